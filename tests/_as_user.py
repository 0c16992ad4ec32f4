"""Run the monitor CLI, or one operator action, as another Unix user: the tests' second operator.

Started as root: `python tests/_as_user.py UID GID UMASK GROUPS -- ARGS...`. It imports what the
command needs first, then drops to the user (the interpreter itself may live in a folder that user
cannot read, such as /root), then runs `monitor ARGS` or `act DB MENTION_ID`, and exits with its code.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    uid, gid, umask = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3], 8)
    groups = [int(g) for g in sys.argv[4].split(",") if g]
    args = sys.argv[sys.argv.index("--") + 1 :]

    import monitor.cli
    import monitor.core.matching
    import monitor.db.presence
    import monitor.db.store
    import monitor.engine.collector
    import monitor.engine.delivery
    import monitor.engine.leader
    import monitor.networks.demo
    import monitor.reports.export
    import monitor.reports.html
    import monitor.reports.stats
    from monitor.core.models import ActionKind

    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    os.umask(umask)
    if args[0] == "act":
        conn = monitor.db.store.open_sync(args[1])
        try:
            conn.execute("BEGIN IMMEDIATE")
            monitor.db.store.act_sync(conn, int(args[2]), ActionKind.NOTE, "bob", {"text": "seen"})
            conn.execute("COMMIT")
        finally:
            conn.close()
        return 0
    return monitor.cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
