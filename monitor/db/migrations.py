"""Numbered schema migrations; PRAGMA user_version records how far a file has come.

Never edit a shipped migration: append a new one. A newer program opens any older file.
"""

from __future__ import annotations

from monitor.db.statsdays import BLOBS_MIGRATION as STATS_BLOBS
from monitor.db.statsdays import MIGRATION as STATS_DAYS

# Each mention's standing escalation: the first escalate action (by time) not undone by a reopen, as `a`, and
# its service; how often the mention was reopened; whether it was resolved (closed at or after the standing
# escalation). Migration 6 fills the clocks with them; monitor.db.clocks keeps them up to date with each
# action and checks them. Part of a shipped migration: never change what they compute.
STANDING = """FROM actions a WHERE a.mention_id = mentions.id AND a.kind = 'escalate' AND a.id NOT IN (
            SELECT r.payload ->> '$.undid' FROM actions r WHERE r.mention_id = mentions.id AND r.kind = 'reopen'
            AND r.payload ->> '$.undid' IS NOT NULL)
        ORDER BY a.at, a.id LIMIT 1"""
SERVICE = "ifnull(a.payload ->> '$.service', '')"
REOPENED = "(SELECT count(*) FROM actions r WHERE r.mention_id = mentions.id AND r.kind = 'reopen')"
RESOLVED = (
    "CASE WHEN status IN ('done', 'dismissed') AND escalated_at IS NOT NULL AND status_at >= escalated_at"
    " THEN status_at END"
)


def fill_clocks(service: str, standing: str) -> str:
    """The clocks of every mention with an escalation or a reopen, from the action log (the first response was
    always kept); then whether each was resolved. `service` and `standing` in the engine's JSON dialect."""
    return f"""
    UPDATE mentions SET (escalated_at, escalated_to) = (SELECT a.at, {service} {standing}), reopened = {REOPENED}
        WHERE id IN (SELECT mention_id FROM actions WHERE kind IN ('escalate', 'reopen'));
    UPDATE mentions SET resolved_at = {RESOLVED} WHERE escalated_at IS NOT NULL;
"""


FILL_CLOCKS = fill_clocks(SERVICE, STANDING)

# Migration 7: the texts the statistics group by (source, primary term, first responder, standing escalation's
# service) also as integer ids into `names`, written with the text in the same transaction (the ingest, the
# action), so a year of statistics reads integers from one covering index: no text, no JSON. A mention's
# primary term is its terms list up to the first '\x1f'. NAMES_OF adds the texts of the mentions `{where}`
# picks to `names` (all of them in the migration, one in an action); NAME_IDS sets a mention's ids from them.
PRIMARY_TERM = "substr(terms, 1, instr(terms || char(31), char(31)) - 1)"
NAMES_OF = f"""INSERT OR IGNORE INTO names (name) SELECT source FROM mentions {{where}}
    UNION SELECT {PRIMARY_TERM} FROM mentions {{where}}
    UNION SELECT first_response_by FROM mentions {{where}} AND first_response_by IS NOT NULL
    UNION SELECT escalated_to FROM mentions {{where}} AND escalated_to IS NOT NULL"""
NAME_IDS = f"""source_id = (SELECT id FROM names WHERE name = source),
    term_id = (SELECT id FROM names WHERE name = {PRIMARY_TERM}),
    responder_id = (SELECT id FROM names WHERE name = first_response_by),
    service_id = (SELECT id FROM names WHERE name = escalated_to)"""
FILL_NAMES = f"{NAMES_OF.format(where='WHERE 1')};\nUPDATE mentions SET {NAME_IDS};"

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
    # 2: the outbox: replies and escalations waiting to leave, written with their action.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        action_id INTEGER NOT NULL REFERENCES actions (id),
        mention_id INTEGER NOT NULL REFERENCES mentions (id),
        kind TEXT NOT NULL,                 -- reply | escalation | followup
        target TEXT NOT NULL,               -- source:<name> or service:<id>#<target index>
        idem_key TEXT NOT NULL UNIQUE,      -- generated once per draft, sent with every attempt
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',  -- pending | sending | sent | failed | cancelled
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,   -- epoch ms, UTC
        claimed_at INTEGER,                 -- when a worker marked it sending (a lease)
        last_error TEXT NOT NULL DEFAULT '',
        remote_id TEXT,
        remote_url TEXT,
        remote_status TEXT,                 -- Open311: open | closed, polled after sending
        checked_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_mention ON outbox (mention_id);
    """,
    # 3: statistics. A covering index over what the clocks read, so a year of mentions is one narrow
    # index scan instead of a million lookups into rows that carry text and raw payloads (it starts
    # with first_seen_at, so it replaces mentions_seen); mentions still waiting at an instant (the
    # backlog carried into a period); escalations and reopens of a range of mentions.
    """
    DROP INDEX IF EXISTS mentions_seen;
    CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,
        deleted_at, edited_at, source, terms, first_response_by);
    CREATE INDEX mentions_response ON mentions (first_response_at, first_seen_at);
    CREATE INDEX actions_escalate ON actions (mention_id, at) WHERE kind = 'escalate';
    CREATE INDEX actions_reopen ON actions (mention_id) WHERE kind = 'reopen';
    """,
    # 4: several operators on one file: who is on duty, who is replying, who collects.
    """
    CREATE TABLE sessions (
        holder TEXT PRIMARY KEY,            -- host:pid of an open app
        operator TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        ended_at INTEGER
    );
    CREATE INDEX sessions_operator ON sessions (operator, ended_at);
    CREATE TABLE claims (
        mention_id INTEGER PRIMARY KEY REFERENCES mentions (id),
        operator TEXT NOT NULL,
        holder TEXT NOT NULL,
        kind TEXT NOT NULL,                 -- replying | resolving
        since INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,              -- 'collector': who collects and delivers
        holder TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    """,
    # 5: real networks. to_us: a mention, reply or quote addressed to the city's own account, kept
    # whatever the terms. Mastodon deletes name a status by its server-local id, which is only in
    # the raw payload: an index on it lets a delete find a post seen before a restart.
    """
    ALTER TABLE mentions ADD COLUMN to_us INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX mentions_mastodon_local_id
        ON mentions (source, coalesce(json_extract(raw, '$.reblog.id'), json_extract(raw, '$.id')))
        WHERE network = 'mastodon';
    """,
    # 6: per-mention clocks, kept in the transaction of the action that changes them (the first response
    # already is): the standing escalation and its service, when it was resolved, how often reopened. A
    # year of statistics is then one scan of the covering index, without reading the action log's JSON.
    # The old statistics index lacked to_us: every row was a lookup into the table; the backlog carried into
    # a period is read from a covering index too.
    f"""
    ALTER TABLE mentions ADD COLUMN escalated_at INTEGER;
    ALTER TABLE mentions ADD COLUMN escalated_to TEXT;
    ALTER TABLE mentions ADD COLUMN resolved_at INTEGER;
    ALTER TABLE mentions ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;
    {FILL_CLOCKS}
    DROP INDEX IF EXISTS mentions_stats;
    CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,
        deleted_at, edited_at, source, terms, first_response_by, to_us, escalated_at, escalated_to, resolved_at);
    DROP INDEX IF EXISTS mentions_response;
    CREATE INDEX mentions_response ON mentions (first_response_at, first_seen_at, deleted_at, status, status_at);
    """,
    # 7: integer ids for the texts the statistics group by (FILL_NAMES above); the statistics index then holds
    # integers only, narrower than migration 6's with its text columns.
    f"""
    CREATE TABLE names (
        id INTEGER PRIMARY KEY,             -- from 1: 0 is "none" in the statistics
        name TEXT NOT NULL UNIQUE
    );
    ALTER TABLE mentions ADD COLUMN source_id INTEGER;
    ALTER TABLE mentions ADD COLUMN term_id INTEGER;       -- the primary term's
    ALTER TABLE mentions ADD COLUMN responder_id INTEGER;  -- first_response_by's
    ALTER TABLE mentions ADD COLUMN service_id INTEGER;    -- escalated_to's
    {FILL_NAMES}
    DROP INDEX IF EXISTS mentions_stats;
    CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,
        deleted_at, edited_at, to_us, escalated_at, source_id, term_id, responder_id, service_id);
    """,
    # 8: per-day digests of the statistics' rows (monitor.db.statsdays), kept dirty by triggers, built here.
    STATS_DAYS,
    # 9: an incident groups mentions (a mention is in at most one), the
    # suggestion computed at ingest, and which incident an action or an outbox item was for (its history and
    # its broadcast's progress). `gen` is rewritten with every change: the suggestions' cache keys on it.
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        service TEXT NOT NULL DEFAULT '',
        reference TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',  -- open | escalated | resolved | dismissed
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        closed_at INTEGER,
        rev INTEGER NOT NULL,
        gen TEXT NOT NULL,
        profile TEXT NOT NULL DEFAULT '{}'  -- terms, distinctive words and places of its reports (suggestions)
    );
    CREATE INDEX incidents_rev ON incidents (rev);
    CREATE INDEX incidents_status ON incidents (status, created_at);
    ALTER TABLE mentions ADD COLUMN incident_id INTEGER;  -- incidents are never deleted; link_sync checks it
    ALTER TABLE mentions ADD COLUMN suggested_incident INTEGER;
    ALTER TABLE mentions ADD COLUMN suggestion_score REAL;
    CREATE INDEX mentions_incident ON mentions (incident_id, status, first_seen_at) WHERE incident_id IS NOT NULL;
    CREATE INDEX mentions_unlinked ON mentions (status, priority, first_seen_at, id) WHERE incident_id IS NULL;
    ALTER TABLE actions ADD COLUMN incident_id INTEGER;
    CREATE INDEX actions_incident ON actions (incident_id, id) WHERE incident_id IS NOT NULL;
    ALTER TABLE outbox ADD COLUMN incident_id INTEGER;
    CREATE INDEX outbox_incident ON outbox (incident_id, state) WHERE incident_id IS NOT NULL;
    CREATE INDEX outbox_sent ON outbox (target, updated_at) WHERE state = 'sent';  -- rate limits after a restart
    """,
    # 10: what paid networks cost, per source and UTC month (X bills monthly): reads
    # (posts and users returned) added with the mentions they paid for, writes (posts created) with the reply.
    """
    CREATE TABLE spend (
        source TEXT NOT NULL,
        month TEXT NOT NULL,                -- 'YYYY-MM', UTC
        reads_usd REAL NOT NULL DEFAULT 0,
        writes_usd REAL NOT NULL DEFAULT 0,
        writes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (source, month)
    );
    """,
    # 11: the per-day digests' columns as blobs of integers (monitor.db.statsdays), rebuilt by the first writer.
    STATS_BLOBS,
    # 12: PostgreSQL's keys of operators' writes (a COMMIT's outcome lost with the connection); SQLite commits
    # locally, never with an unknown outcome: nothing here.
    "SELECT 1",
    # 13: PostgreSQL's per-day digests (monitor.db.pg.statsdays); SQLite has its own since 8 and 11.
    "SELECT 1 -- 13: PostgreSQL's per-day digests",
]
