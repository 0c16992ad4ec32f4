"""PostgreSQL, the second store: for a region's desk on several machines, and for failover with a standby.

The same guarantees as the SQLite store, by PostgreSQL's own means: row locks where SQLite takes the whole
file (BEGIN IMMEDIATE), `FOR UPDATE SKIP LOCKED` for the outbox, one counter row for the change sequence.
What both engines share (rows into dataclasses, the undo rule, a pane's order) is in monitor.db.rows.
"""
