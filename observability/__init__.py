"""Metrics, traces and logs (README "Operating disputeflow"); `observability.processes` has
one setup function per process."""
