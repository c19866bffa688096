"""Evidence bodies, kept outside the workflow: a case records only their ids and sizes."""

from evidence.store import EvidenceBody, read_bodies, store

__all__ = ["EvidenceBody", "read_bodies", "store"]
