"""Evidence bodies, kept outside the workflow: a case records only their ids and sizes."""

from evidence.store import EvidenceBody, describe, read_bodies, store

__all__ = ["EvidenceBody", "describe", "read_bodies", "store"]
