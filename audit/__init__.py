"""Auditing disputes from their Temporal histories: export, replay and a readable trail.

Everything here reads; nothing changes a dispute. The history is the record: the
trail is derived from it, and a replay re-runs the current workflow code against it
to prove the recorded decisions still follow from that code.

- `audit.history`: fetch a dispute's history, read and write the standard JSON format.
- `audit.replay`: replay histories (live, listed, filtered or from files) and report.
- `audit.trail`: the ordered, readable account of what happened, built from a history.
- `audit.commands`: the `disputeflow audit ...` command line.
- `audit.record_scenarios`: records the committed histories under tests/histories.
"""
