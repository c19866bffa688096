"""The Alembic migrations of the application's tables (run by `disputeflow migrate`)."""
