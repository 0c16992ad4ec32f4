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
    import monitor.collector
    import monitor.delivery.worker
    import monitor.export
    import monitor.leader
    import monitor.matching
    import monitor.presence
    import monitor.report_html
    import monitor.sources.demo
    import monitor.stats
    import monitor.store
    from monitor.models import ActionKind

    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    os.umask(umask)
    if args[0] == "act":
        conn = monitor.store.open_sync(args[1])
        try:
            conn.execute("BEGIN IMMEDIATE")
            monitor.store.act_sync(conn, int(args[2]), ActionKind.NOTE, "bob", {"text": "seen"})
            conn.execute("COMMIT")
        finally:
            conn.close()
        return 0
    return monitor.cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
