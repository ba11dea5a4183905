"""The writer's questions about its own transactions (see actors.writer: a lost COMMIT reply)."""

#: Inside the transaction: its id (xid8, as bigint), which assigns one if it has none yet.
CURRENT_XACT_ID = "SELECT pg_current_xact_id()::text::bigint"

#: 'committed', 'aborted', 'in progress', or NULL when too old to know; an error for an id "in the future".
XACT_STATUS = "SELECT pg_xact_status($1::text::xid8)"

#: Ends the server process $1 if it still holds transaction $2 open (the xid keeps a recycled pid safe).
END_ORPHANED_TRANSACTION = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_xid = $2::text::xid8::xid
"""
