"""One operator's app, run headless in its own process by tests/test_multi_operator.py.

It opens the real MonitorApp on the shared database (collecting, so it competes for the lease), waits
for the test's "go" file, then presses real keys on whatever is selected in the New pane: dismiss,
escalate, note, reply. A second round runs when the "phase2" file appears (after the test killed the
collector), then it idles until the "stop" file. It writes a JSON report: every action the screen
attempted (what the operator saw, and whether it committed), every notice, any crash.

Not a test module (no test_ prefix): pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from monitor.core.dburl import is_database_url
from monitor.core.models import ActionKind, MentionRow, Status
from monitor.networks import SourceContext, load_watchlist
from monitor.ui.app import MonitorApp
from monitor.ui.screens import keygate
from monitor.ui.screens.dialogs import ChoiceDialog, ComposeDialog, ConfirmDialog, DiscardDialog, NoteDialog
from monitor.ui.screens.main import MainScreen

KINDS = ("dismiss", "escalate", "note", "reply")
STEP_TIMEOUT = 120.0  # generous: five processes share two busy cores; a wait ends as soon as it holds


class OperatorApp(MonitorApp):
    """The real app; only notices and the app-level action are recorded (no on_mount here: see the MRO note)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[dict[str, Any]] = []
        self.app_acts: list[dict[str, Any]] = []

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.notices.append({"message": str(message), "severity": kwargs.get("severity", "information")})
        super().notify(message, **kwargs)

    async def act(
        self, mention_id: int, kind: ActionKind, payload: dict[str, Any], expect_status: Status | None = None
    ) -> bool:
        record: dict[str, Any] = {
            "mention_id": mention_id,
            "kind": kind.value,
            "expect_status": expect_status.value if expect_status else None,
        }
        try:
            record["ok"] = await super().act(mention_id, kind, payload, expect_status)
        except BaseException as exc:
            record["ok"], record["error"] = False, repr(exc)
            raise
        finally:
            self.app_acts.append(record)
        return bool(record["ok"])


# The screen's own action path, wrapped to record what the operator saw when acting.
SCREEN_ACTS: list[dict[str, Any]] = []
STEPS: list[dict[str, Any]] = []  # each key sequence: what it was, how it ended, how long it took
PROGRESS = "/dev/null"  # set from --report: STEPS as they happen, one JSON line each
_screen_act = MainScreen._act


async def _recording_act(
    self: MainScreen, row: MentionRow, kind: ActionKind, payload: dict[str, Any], check: bool = True
) -> bool:
    record: dict[str, Any] = {"mention_id": row.id, "kind": kind.value, "seen": row.status.value, "check": check}
    SCREEN_ACTS.append(record)
    record["ok"] = None  # in flight
    record["ok"] = await _screen_act(self, row, kind, payload, check)
    return bool(record["ok"])


MainScreen._act = _recording_act  # type: ignore[method-assign]

# Five apps share two busy cores here: a key's consequences can take longer than the gate's safety valve
# (20 s, for a stuck database), which would let the next keys through early and scatter them. What this
# test pins is that the operators' actions are consistent with each other, so each key waits its turn.
keygate.HOLD_MAX_S = STEP_TIMEOUT


async def wait_for(pilot: Pilot[Any], condition: Any, within: float = STEP_TIMEOUT) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await pilot.pause(0.02)
    return False


async def press(pilot: Pilot[Any], *keys: str) -> None:
    """Press keys and wait until the app has handled them with what they set off (the key gate counts them):
    a reply's worker has opened its dialog, a dismissal's choice is on screen. Deciding what to press next
    from the screen before that would race the app."""
    gate = pilot.app.keys  # type: ignore[attr-defined]
    target = gate.handled + len(keys)
    await pilot.press(*keys)
    await wait_for(pilot, lambda: gate.handled >= target)


def composing(app: OperatorApp) -> bool:
    return any(w.group == "compose" and not w.is_finished for w in app.workers)


async def back_to_main(pilot: Pilot[Any]) -> None:
    app = pilot.app
    for _ in range(5):
        if isinstance(app.screen, MainScreen):
            return
        screen = app.screen
        await press(pilot, "y" if isinstance(screen, DiscardDialog) else "escape")  # Esc on a draft asks
        await wait_for(pilot, lambda s=screen: app.screen is not s)  # closed (or a question came up instead)


async def one_action(pilot: Pilot[Any], app: OperatorApp, kind: str, rng: random.Random, n: int) -> str:
    """Press the keys of one action on the selected New mention; returns what happened."""
    await back_to_main(pilot)
    screen = app.screen
    assert isinstance(screen, MainScreen)
    if screen.pane().status is not Status.NEW:
        await press(pilot, "1")
    if not await wait_for(pilot, lambda: screen.pane().row_count > 0):
        return "empty"
    # Mostly the top rows, so that operators collide on the same mentions.
    for _ in range(rng.choice((0, 0, 1, 2))):
        await press(pilot, "j")
    before = len(SCREEN_ACTS)
    if kind == "dismiss":
        await press(pilot, "d")
        if await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog)):
            await press(pilot, "enter")
    elif kind == "escalate":
        await press(pilot, "e")
        if await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog)):
            await press(pilot, "enter", *f"op note {n}", "enter")
    elif kind == "note":
        await press(pilot, "n")
        if await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog)):
            await press(pilot, *f"appel {n}", "ctrl+s")
    else:
        await press(pilot, "r")
        # The reply flow is a worker: a take-over question, the compose dialog, perhaps the traffic cop.
        # Bounded: a screen this loop does not expect must end the step (and be reported), not spin forever.
        deadline = time.monotonic() + STEP_TIMEOUT
        while await wait_for(pilot, lambda: not isinstance(app.screen, MainScreen) or not composing(app)):
            if time.monotonic() > deadline:
                return "stuck: " + snapshot(app)
            if isinstance(app.screen, ConfirmDialog):
                title = app.screen.title_text
                await press(pilot, "n" if title == "Someone is on it" else "y")
            elif isinstance(app.screen, ComposeDialog):
                await press(pilot, *f"merci {n}", "ctrl+s")
            elif not composing(app):
                break
            await pilot.pause(0.02)
    # Done when the screen's action returned, or nothing was attempted (declined, cancelled).
    if not await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and (
        len(SCREEN_ACTS) == before or SCREEN_ACTS[-1]["ok"] is not None)):  # fmt: skip
        return "stuck: " + snapshot(app)
    return "acted" if len(SCREEN_ACTS) > before else "nothing"


def snapshot(app: OperatorApp) -> str:
    """What the app looks like when a step did not end: for the test's failure message."""
    focused = app.focused
    return json.dumps({
        "screens": [type(s).__name__ for s in app.screen_stack],
        "focused": f"{type(focused).__name__}#{focused.id}" if focused else None,
        "workers": [f"{w.name}:{w.state.name}" for w in app.workers],
        "gate_idle": app.keys.idle(),
        "last_act": SCREEN_ACTS[-1] if SCREEN_ACTS else None,
        "leading": app.leading,
    })  # fmt: skip


async def rounds(pilot: Pilot[Any], app: OperatorApp, count: int, rng: random.Random, start: int) -> None:
    for n in range(start, start + count):
        t = time.monotonic()
        outcome = await one_action(pilot, app, KINDS[n % len(KINDS)], rng, n)
        STEPS.append({"kind": KINDS[n % len(KINDS)], "outcome": outcome, "seconds": round(time.monotonic() - t, 3)})
        append(PROGRESS, json.dumps(STEPS[-1]) + "\n")  # read by the test if a phase does not end


def mark(path: str, text: str) -> None:
    """Written aside then renamed: the test sees the file only with its text (it reads the pid at once)."""
    Path(path + ".tmp").write_text(text, encoding="utf-8")  # a few bytes on local disk: no need for a thread
    os.replace(path + ".tmp", path)


def append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:  # a few bytes, like mark()
        f.write(text)


def exists(path: str) -> bool:
    return Path(path).exists()


async def wait_file(pilot: Pilot[Any], path: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if exists(path):
            return True
        await pilot.pause(0.05)
    return False


async def main(args: argparse.Namespace) -> dict[str, Any]:
    watchlist = load_watchlist(args.watchlist)
    target = args.db if is_database_url(args.db) else Path(args.db)  # a SQLite file or a PostgreSQL URL
    app = OperatorApp(
        watchlist, db_path=target, operator=args.operator, collect=True, dry_run=False,
        context=SourceContext(state_dir=Path(args.watchlist).parent),
    )  # fmt: skip
    rng = random.Random(args.seed)
    global PROGRESS
    PROGRESS = args.report + ".steps"
    report: dict[str, Any] = {"operator": args.operator, "pid": os.getpid(), "error": None}
    deadline = time.monotonic() + args.deadline
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), 10.0)
            mark(args.ready, str(os.getpid()))
            if await wait_file(pilot, args.go, deadline):
                await rounds(pilot, app, args.actions, rng, 0)
            mark(args.ready + ".phase1", "done")
            if await wait_file(pilot, args.phase2, deadline):
                await rounds(pilot, app, args.phase2_actions, rng, args.actions)
            mark(args.ready + ".phase2", "done")
            report["leading_at_stop"] = app.leading
            await wait_file(pilot, args.stop, deadline)
    except BaseException:
        report["error"] = traceback.format_exc()
    report["screen_acts"] = SCREEN_ACTS
    report["app_acts"] = app.app_acts
    report["steps"] = STEPS
    report["notices"] = app.notices
    return report


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    for name in ("--watchlist", "--db", "--operator", "--report", "--ready", "--go", "--phase2", "--stop"):
        p.add_argument(name, required=True)
    p.add_argument("--actions", type=int, default=12)
    p.add_argument("--phase2-actions", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    # Only a safety net for an abandoned run (the test kills its processes anyway): never part of the timing.
    p.add_argument("--deadline", type=float, default=900.0, help="seconds before giving up on the test's files")
    return p.parse_args(argv)


if __name__ == "__main__":
    # Warnings and errors (a failed lease renewal, a worker crash) go to stderr, which the test reads.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(levelname)s: %(message)s")
    ns = parse(sys.argv[1:])
    result = asyncio.run(main(ns))
    Path(ns.report).write_text(json.dumps(result, indent=1), encoding="utf-8")
    sys.exit(1 if result["error"] else 0)
