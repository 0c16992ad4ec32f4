"""A strict, typed reader over PyYAML nodes, so every config error can name its line."""

from __future__ import annotations

import builtins
import contextlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import yaml

from monitor.core.patterns import PatternError, compile_pattern


class ConfigError(Exception):
    """A mistake in a config file, located at a line, with what was expected."""

    def __init__(self, file: str, line: int, problem: str, expected: str = "") -> None:
        problem = problem.replace("\n", " ")  # one line, always: this is what `monitor check` prints
        self.file, self.line, self.problem, self.expected = file, line, problem, expected
        text = f"{file}:{line}: {problem}"
        if expected:
            text += f" — expected {expected}"
        super().__init__(text)


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")
_DECIMAL = re.compile(r"^[-+]?[0-9][0-9_]*$")  # YAML 1.1 also reads 0x10, 0o7 and 1:30 as ints: too surprising
# Bounds on what a config value may be, so no value can overflow a date, hang a loop or exhaust the stack.
MAX_DEPTH = 20  # nesting of lists and mappings; the watchlist needs 4
MAX_TEXT = 5000  # characters in one value
MAX_NUMBER = 10**9
MAX_DURATION = timedelta(days=366)
MAX_FILE = 1_000_000  # bytes
# The name of an environment variable that holds a secret (the secret itself never goes in a config file).
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_TEXT = 40  # characters in a number or duration: int() of thousands of digits is slow, then refused
_DURATION_EXPECTED = "a duration like 30m, 1h or 1h30m"


@dataclass(frozen=True)
class Node:
    """One YAML node and the file it came from."""

    file: str
    node: yaml.Node

    @property
    def line(self) -> builtins.int:
        return self.node.start_mark.line + 1

    def fail(self, problem: builtins.str, expected: builtins.str = "") -> NoReturn:
        raise ConfigError(self.file, self.line, problem, expected)

    def _scalar(self, expected: builtins.str) -> yaml.ScalarNode:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail(f"found a {_kind(self.node)}", expected)
        return self.node

    def is_null(self) -> builtins.bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag == "tag:yaml.org,2002:null"

    def str(self, max_length: builtins.int = MAX_TEXT) -> builtins.str:
        node = self._scalar("text")
        # An unquoted 2025-07-14 is a YAML timestamp: as text it is what the user meant.
        if node.tag not in (
            "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"
        ):  # fmt: skip
            self.fail(f"found {node.value!r} ({_tag(node)})", "text")
        value = str(node.value)
        if not value.strip():
            self.fail("found an empty value", "non-empty text")
        if len(value) > max_length:
            self.fail(f"found {len(value)} characters", f"at most {max_length}")
        return value

    def int(self, minimum: builtins.int | None = None, maximum: builtins.int = MAX_NUMBER) -> builtins.int:
        node = self._scalar("a whole number")
        if node.tag != "tag:yaml.org,2002:int" or not _DECIMAL.match(node.value) or len(node.value) > _NUMBER_TEXT:
            self.fail(f"found {node.value!r} ({_tag(node)})", "a whole number like 10")
        value = builtins.int(node.value.replace("_", ""))
        if value < (-maximum if minimum is None else minimum):
            self.fail(f"found {value}", f"a number of at least {-maximum if minimum is None else minimum}")
        if value > maximum:
            self.fail(f"found {value}", f"a number of at most {maximum}")
        return value

    def float(self, minimum: builtins.float | None = None, maximum: builtins.float = MAX_NUMBER) -> builtins.float:
        node = self._scalar("a number")
        value: builtins.float | None = None
        if node.tag == "tag:yaml.org,2002:int" and _DECIMAL.match(node.value) and len(node.value) <= _NUMBER_TEXT:
            value = builtins.float(node.value.replace("_", ""))
        elif node.tag == "tag:yaml.org,2002:float" and ":" not in node.value and len(node.value) <= _NUMBER_TEXT:
            with contextlib.suppress(ValueError, OverflowError):
                value = _CONSTRUCTOR.construct_yaml_float(node)
        if value is None or not math.isfinite(value):
            self.fail(f"found {node.value!r} ({_tag(node)})", "a finite number like 1.5")
        if value < (-maximum if minimum is None else minimum):
            self.fail(f"found {value}", f"a number of at least {-maximum if minimum is None else minimum}")
        if value > maximum:
            self.fail(f"found {value}", f"a number of at most {maximum}")
        return value

    def bool(self) -> builtins.bool:
        node = self._scalar("true or false")
        if node.tag != "tag:yaml.org,2002:bool":
            self.fail(f"found {node.value!r}", "true or false")
        return node.value.lower() in ("true", "yes", "on")

    def duration(self, maximum: timedelta = MAX_DURATION) -> timedelta:
        """Durations read like '30m', '1h', '1h30m', '45s', '2d'; a bare number is minutes."""
        node = self._scalar(_DURATION_EXPECTED)
        text = str(node.value)
        if len(text) > _NUMBER_TEXT:
            self.fail(f"found {len(text)} characters", _DURATION_EXPECTED)
        if node.tag == "tag:yaml.org,2002:int" and _DECIMAL.match(text):
            seconds = builtins.int(text.replace("_", "")) * 60
        else:
            match = _DURATION.match(text)
            if not text.strip() or not match or not any(match.groups()):
                self.fail(f"{text!r} is not a duration", _DURATION_EXPECTED)
            d, h, m, s = (builtins.int(g) if g else 0 for g in match.groups())
            seconds = ((d * 24 + h) * 60 + m) * 60 + s
        # Compared as whole seconds before any timedelta exists: timedelta(days=10**9) overflows.
        if not 0 <= seconds <= maximum.total_seconds():
            self.fail(f"{text!r} is out of range", f"a duration from 0 to {_days(maximum)}")
        return timedelta(seconds=seconds)

    def regex(self) -> builtins.str:
        text = self.str()
        try:
            compile_pattern(text)
        except PatternError as exc:
            self.fail(f"pattern {text!r}: {exc}", exc.expected)
        return text

    def choice(self, options: Iterable[builtins.str]) -> builtins.str:
        options = list(options)
        value = self.str()
        if value not in options:
            self.fail(f"unknown value {value!r}", "one of " + ", ".join(options))
        return value

    def list(self) -> builtins.list[Node]:
        if self.is_null():
            return []
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail(f"found a {_kind(self.node)}", "a list (lines starting with '- ')")
        return [Node(self.file, item) for item in self.node.value]

    def items(self) -> builtins.list[Node]:
        """A list's items; a single value stands for a list of one."""
        if isinstance(self.node, yaml.ScalarNode) and not self.is_null():
            return [self]
        return self.list()

    def str_list(self, max_length: builtins.int = MAX_TEXT) -> builtins.list[builtins.str]:
        return [item.str(max_length) for item in self.items()]

    def mapping(
        self, allowed: Iterable[builtins.str], required: Iterable[builtins.str] = (), what: builtins.str = "section"
    ) -> dict[builtins.str, Node]:
        """The mapping's entries; unknown and duplicate keys are errors, as are missing required ones."""
        allowed = list(allowed)
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"found a {_kind(self.node)}", f"a {what} with keys: " + ", ".join(allowed))
        out: dict[str, Node] = {}
        for key_node, value_node in self.node.value:
            key = Node(self.file, key_node)
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else ""
            if name not in allowed:
                key.fail(f"unknown key {name!r} in {what}", "one of " + ", ".join(allowed))
            if name in out:
                key.fail(f"duplicate key {name!r} in {what}", "each key once")
            out[name] = Node(self.file, value_node)
        for name in required:
            if name not in out:
                self.fail(f"missing key {name!r} in {what}", f"a {name!r} entry")
        return out

    def dict_of_str(self, what: builtins.str, max_length: builtins.int = MAX_TEXT) -> dict[builtins.str, builtins.str]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"found a {_kind(self.node)}", f"a mapping ({what})")
        out: dict[str, str] = {}
        for key_node, value_node in self.node.value:
            key = Node(self.file, key_node)
            if key.str(max_length) in out:
                key.fail(f"duplicate key {key.str()!r}", "each key once")
            out[key.str()] = Node(self.file, value_node).str(max_length)
        return out


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"value {node.value!r}" if node.value != "" else "empty value"


def _tag(node: yaml.ScalarNode) -> str:
    return node.tag.rsplit(":", 1)[-1]


def _days(delta: timedelta) -> str:
    return f"{delta.days}d" if delta.days else f"{builtins.int(delta.total_seconds())}s"


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _TooDeep(Exception):
    def __init__(self, line: builtins.int) -> None:
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML composes nodes recursively: count the depth so a deeply nested file is an error, not a RecursionError."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
                raise _TooDeep(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_root(path: Path) -> Node:
    """Parse a YAML file into a located node, turning syntax errors into ConfigError."""
    name = str(path)
    try:
        if path.stat().st_size > MAX_FILE:
            raise ConfigError(name, 0, "the file is too large", f"a watchlist of at most {MAX_FILE:,} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, 0, "file not found", "a watchlist file (see README)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, 0, f"cannot read file: {exc}", "a readable UTF-8 file") from None
    try:
        node = yaml.compose(text, Loader=_BoundedLoader)
    except _TooDeep as exc:
        raise ConfigError(name, exc.line, "lists or mappings nested too deep", f"at most {MAX_DEPTH} levels") from None
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct began (an unclosed bracket or quote);
        # the problem mark is where the parser gave up, often the end of the file.
        start, stop = exc.context_mark, exc.problem_mark
        line = mark.line + 1 if (mark := start or stop) else 0
        problem = f"YAML syntax error: {exc.problem}"
        if start and stop and stop.line != start.line:
            problem += f" ({exc.context}, noticed at line {stop.line + 1})"
        raise ConfigError(name, line, problem, "valid YAML") from None
    except yaml.reader.ReaderError as exc:  # a control character: located by position, not by mark
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(name, line, f"character #x{exc.character:04x} is not allowed in YAML", "text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, 0, f"YAML error: {exc}", "valid YAML") from None
    if node is None:
        raise ConfigError(name, 1, "the file is empty", "a watchlist mapping")
    return Node(name, node)
