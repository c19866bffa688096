"""The archive of closed cases: durable, tamper-evident, kept for years after Temporal lets go.

See README "The archive" for where it lives, what a record holds and how it is verified.
Modules import what they need (`archive.service.open_archive`); this package root stays empty
so `disputeflow` reaches `archive.cli`'s parser without loading the archive."""
