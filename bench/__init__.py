"""disputeflow's benchmarks: scripts that print figures (see the README's Performance section)."""
