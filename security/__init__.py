"""Keeping personal data where it belongs: payload encryption for Temporal, the codec
server that decrypts for staff, and signed webhooks."""
