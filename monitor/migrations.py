"""Numbered schema migrations; PRAGMA user_version records how far a file has come.

Never edit a shipped migration: append a new one. A newer program opens any older file.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: mentions, the append-only action log, per-source cursors and states.
    """
    CREATE TABLE mentions (
        id INTEGER PRIMARY KEY,             -- increasing: inserts stay at the end of the b-tree
        source TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        network TEXT NOT NULL,
        author TEXT NOT NULL,
        author_name TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        url TEXT NOT NULL DEFAULT '',
        lang TEXT,
        thread_id TEXT,
        reply_to TEXT,
        terms TEXT NOT NULL,                -- matched watch terms, '\x1f'-separated, first is primary
        priority INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'new',
        published_at INTEGER NOT NULL,      -- epoch ms, UTC
        first_seen_at INTEGER NOT NULL,
        status_at INTEGER NOT NULL,
        first_response_at INTEGER,          -- stored, never recomputed on reopen
        first_response_by TEXT,
        edited_at INTEGER,
        deleted_at INTEGER,
        rev INTEGER NOT NULL,               -- change sequence: readers ask for rev > last seen
        raw TEXT,                           -- the source payload, for audit only
        UNIQUE (source, remote_id)
    );
    CREATE INDEX mentions_rev ON mentions (rev);
    CREATE INDEX mentions_status ON mentions (status, priority, first_seen_at);
    CREATE INDEX mentions_closed ON mentions (status, status_at, id);
    CREATE INDEX mentions_seen ON mentions (first_seen_at);
    CREATE INDEX mentions_thread ON mentions (source, thread_id) WHERE thread_id IS NOT NULL;

    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        mention_id INTEGER NOT NULL REFERENCES mentions (id),
        kind TEXT NOT NULL,
        operator TEXT NOT NULL,
        at INTEGER NOT NULL,
        status_before TEXT NOT NULL,
        status_after TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX actions_mention ON actions (mention_id, at);
    CREATE INDEX actions_at ON actions (at);
    CREATE TRIGGER actions_append_only_update BEFORE UPDATE ON actions
        BEGIN SELECT RAISE(ABORT, 'actions are append-only'); END;
    CREATE TRIGGER actions_append_only_delete BEFORE DELETE ON actions
        BEGIN SELECT RAISE(ABORT, 'actions are append-only'); END;

    CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        cursor TEXT,
        updated_at INTEGER NOT NULL
    );

    CREATE TABLE source_state (
        source TEXT PRIMARY KEY,
        state TEXT NOT NULL,                -- live | polling | backoff | failing | idle
        detail TEXT NOT NULL DEFAULT '',
        until_at INTEGER,
        last_ok_at INTEGER,
        updated_at INTEGER NOT NULL
    );
    """,
]
