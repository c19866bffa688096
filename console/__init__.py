"""The web console for mediators and auditors, served by the API process under /console.

Its pages call the API in-process with the signed-in user's token (`console.api`), so every
rule, role check and idempotency guarantee is the API's own."""

from console.routes import mount

__all__ = ["mount"]
