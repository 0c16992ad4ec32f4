"""Leases in SQL: one holder at a time (the collector, the delivery), and the fence that refuses a former holder."""

from __future__ import annotations

import sqlite3

from monitor.db.api import LeaseLost

LEASE_TTL_MS = 6_000  # a collector that stops renewing is replaced within this (plus one renew period)


def acquire_lease_sync(c: sqlite3.Connection, name: str, holder: str, now: int, ttl: int = LEASE_TTL_MS) -> bool:
    """Take or renew the lease if it is free, expired, or already ours (inside BEGIN IMMEDIATE)."""
    row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != holder and row[1] > now:
        return False
    c.execute(
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
        " acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at"
        " ELSE excluded.acquired_at END",
        (name, holder, now, now + ttl),
    )
    return True


def check_lease_sync(c: sqlite3.Connection, name: str, holder: str, now: int) -> None:
    """Fencing: refuse a write from a process whose lease has passed to someone else."""
    row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if row is None or row[0] != holder:
        raise LeaseLost(f"lease {name!r} is held by {row[0] if row else 'nobody'}")
