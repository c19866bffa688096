"""How the project declares its thread-run activities."""

from temporalio import activity

# The SDK cancels a sync activity (a worker stopping past its grace, a cancel request) by raising
# CancelledError asynchronously in its thread, wherever that thread is: inside a database driver's
# call it leaves the pooled connection unusable for whoever checks it out next (psycopg: "can't
# change 'autocommit' now: connection in transaction status ACTIVE", a 500 on an unrelated request).
# Ours are short transactions, idempotent on their ids: they run to the end, and a retry of one
# that finished answers "exists".
uninterrupted = activity.defn(no_thread_cancel_exception=True)
