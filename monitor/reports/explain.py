"""The definitions behind every figure, printed by `monitor stats --explain` and in the HTML report."""

EXPLAIN = """\
How the numbers are computed

Period
    Mentions are selected by when monitor first saw them (first_seen_at), in
    [since, until). Hours and weekdays are local time in the watchlist's time
    zone.

First response
    From first_seen_at (when monitor first saw the mention) to the first
    public reply, escalation or dismissal (first_response_at, stored when it
    happens). Not from the post's own publication time: we cannot answer
    before we see it, and feeds and backfills deliver posts late, which would
    charge the desk for time it never had. Credited to the operator who acted
    (first_response_by), not to an assignee. Notes do not stop the clock.
    Reopening never restarts it: the first response stays. A mention still
    waiting is "open": counted, with the age of the oldest (now), and left out
    of the percentiles. An open mention already past the target counts as a
    breach in "within target"; one not yet past it is left out (it may still
    make it).

Resolution
    From the mention's standing escalation (the first escalate action not
    undone by a reopen) to its closing: the service's fix (resolve), or a
    reply or dismissal after the escalation. A mention reopened and closed
    again counts to its final closing (when it reached the closed status it is
    in now). Still escalated: open.

Business time
    Each clock is also measured counting only the desk's opening hours
    (business_hours in the watchlist, per weekday, in its time zone), less
    public holidays (the holidays package, for the configured country and
    subdivision) and extra_holidays. A mention that arrives while the desk is
    closed starts its business clock at the next opening. With no opening
    hours configured, business time is calendar time.

Deleted, edited, reopened
    A mention deleted by its author still counts if it was answered. One
    deleted before any response leaves the open backlog when it was deleted
    and is counted apart ("deleted before response"). An edited mention is one
    mention: counted once. A reopened mention keeps its first response; its
    resolution runs to its final closing.

Percentiles
    Linear interpolation between closest ranks (Hyndman-Fan type 7, the
    default of numpy, R and Excel's PERCENTILE.INC): sort the n durations
    x[0..n-1], h = (n-1)*p, value = x[floor h] + (h - floor h) * (x[floor h +
    1] - x[floor h]). The median is p = 0.5 (the mean of the two middle values
    when n is even). Durations are counted in whole seconds, rounded up, so
    "within target" is exact and never flatters.

Within target
    Finished within the target / (finished + open already past it). The same
    target (targets.first_response, targets.resolution) applies to calendar
    and business time.

Addressed to us
    Mentions of, replies to and quotes of the city's own accounts (the
    Mastodon token's account, the Bluesky source's handle): the network says
    so (a mention notification, a reply or quote of our post), whatever the
    text. They are kept even when no watch term matches. Share: addressed to
    us / all mentions of the period.

Backlog and volume
    For each hour of the period, how many mentions were waiting for a first
    response at the end of that hour (or now, for the current hour), including
    mentions seen before the period and still waiting in it. Volume: how many
    were first seen in each hour.
"""
