"""`keys:` in the watchlist, checked against the bindings the screens really have.

Bindings are read from the classes themselves (ids, default keys, and which are live together), so
a new binding is checked without a table to keep in step. Used by `monitor check` and at start-up.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import _character_to_key
from textual.screen import Screen

from monitor.core.config import ConfigError, Watchlist
from monitor.ui.widgets.pane import MentionTable

# Widgets whose bindings are live on a screen beside its own: composition, which the classes don't show.
WIDGETS_ON: dict[str, tuple[type[DOMNode], ...]] = {"MainScreen": (MentionTable,)}


def bindings_of(cls: type[DOMNode]) -> list[Binding]:
    """The class's bindings with those it inherits, as Textual merges them."""
    out: list[Binding] = []
    for base in reversed(cls.__mro__):
        if issubclass(base, DOMNode):
            if not base._inherit_bindings:
                out.clear()
            out.extend(Binding.make_bindings(base.__dict__.get("BINDINGS", [])))
    return out


def scopes() -> dict[str, list[Binding]]:
    """Per screen, every binding live on it: its own, its widgets', the app's."""
    import monitor.ui.screens
    from monitor.ui.app import MonitorApp

    app = bindings_of(MonitorApp)
    out: dict[str, list[Binding]] = {}
    for info in pkgutil.iter_modules(monitor.ui.screens.__path__):
        module = importlib.import_module(f"monitor.ui.screens.{info.name}")
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and issubclass(cls, Screen) and cls.__module__ == module.__name__:
                widgets = [b for w in WIDGETS_ON.get(name, ()) for b in bindings_of(w)]
                out[name] = bindings_of(cls) + widgets + app
    return out


# Keys a terminal or a multiplexer takes before the app sees them: the tmux and screen prefixes, and the
# controls a terminal sends as tab, enter, backspace and escape.
TAKEN = {
    "ctrl+a": "the screen prefix", "ctrl+b": "the tmux prefix", "ctrl+i": "tab", "ctrl+m": "enter",
    "ctrl+h": "backspace", "ctrl+left_square_bracket": "escape",
}  # fmt: skip


def taken(bindings: list[Binding]) -> list[tuple[str, str]]:
    """(binding id or action, key) for each key of these bindings that the terminal takes."""
    return [(b.id or b.action, key) for b in bindings for key in map(_normal, b.key.split(",")) if key in TAKEN]


def _normal(key: str) -> str:
    key = key.strip()
    return _character_to_key(key) if len(key) == 1 else key


def check_keys(watchlist: Watchlist) -> None:
    """Every remapped id exists, and no remap puts two actions on one key where both are live."""
    if not watchlist.keys:
        return
    file = str(watchlist.path)
    lines = watchlist.key_lines
    live = scopes()
    known = sorted({b.id for bindings in live.values() for b in bindings if b.id})
    for binding_id, keys in watchlist.keys.items():
        for key in filter(None, map(_normal, keys.split(","))):
            if key in TAKEN:
                raise ConfigError(
                    file, lines.get(binding_id, 0), f"keys: {binding_id} on {key!r}, which is {TAKEN[key]}",
                    "a key the terminal passes on (not ctrl+a, ctrl+b, ctrl+i, ctrl+m, ctrl+h or ctrl+[)",
                )  # fmt: skip
        if binding_id not in known:
            raise ConfigError(
                file, lines.get(binding_id, 0), f"unknown action id {binding_id!r} under keys",
                "an id from the ? screen, such as " + ", ".join(known[:6]),
            )  # fmt: skip
    for screen, bindings in live.items():
        owner: dict[str, Binding] = {}
        for b in bindings:
            remapped = b.id in watchlist.keys
            keys = watchlist.keys[b.id] if b.id and remapped else b.key
            for key in filter(None, map(_normal, keys.split(","))):
                other = owner.setdefault(key, b)
                if (other.id or other.action) == (b.id or b.action):
                    continue
                if remapped or other.id in watchlist.keys:
                    mine = b if remapped else other
                    theirs = other if mine is b else b
                    raise ConfigError(
                        file, lines.get(mine.id or "", 0),
                        f"keys: {mine.id} on {key!r} clashes with {theirs.id or theirs.action} ({screen})",
                        "a key no other action of that screen uses",
                    )  # fmt: skip
