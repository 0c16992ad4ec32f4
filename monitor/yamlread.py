"""A strict, typed reader over PyYAML nodes, so every config error can name its line."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import yaml


class ConfigError(Exception):
    """A mistake in a config file, located at a line, with what was expected."""

    def __init__(self, file: str, line: int, problem: str, expected: str = "") -> None:
        self.file, self.line, self.problem, self.expected = file, line, problem, expected
        text = f"{file}:{line}: {problem}"
        if expected:
            text += f" — expected {expected}"
        super().__init__(text)


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")


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

    def str(self) -> builtins.str:
        node = self._scalar("text")
        # An unquoted 2025-07-14 is a YAML timestamp: as text it is what the user meant.
        if node.tag not in (
            "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"
        ):  # fmt: skip
            self.fail(f"found {node.value!r} ({_tag(node)})", "text")
        value = str(node.value)
        if not value.strip():
            self.fail("found an empty value", "non-empty text")
        return value

    def int(self, minimum: builtins.int | None = None) -> builtins.int:
        node = self._scalar("a whole number")
        if node.tag != "tag:yaml.org,2002:int":
            self.fail(f"found {node.value!r} ({_tag(node)})", "a whole number")
        value = int(node.value.replace("_", ""), 0)
        if minimum is not None and value < minimum:
            self.fail(f"found {value}", f"a number of at least {minimum}")
        return value

    def float(self, minimum: builtins.float | None = None) -> builtins.float:
        node = self._scalar("a number")
        if node.tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            self.fail(f"found {node.value!r} ({_tag(node)})", "a number")
        value = float(node.value.replace("_", ""))
        if minimum is not None and value < minimum:
            self.fail(f"found {value}", f"a number of at least {minimum}")
        return value

    def bool(self) -> builtins.bool:
        node = self._scalar("true or false")
        if node.tag != "tag:yaml.org,2002:bool":
            self.fail(f"found {node.value!r}", "true or false")
        return node.value.lower() in ("true", "yes", "on")

    def duration(self) -> timedelta:
        """Durations read like '30m', '1h', '1h30m', '45s', '2d'; a bare number is minutes."""
        node = self._scalar("a duration like 30m, 1h or 1h30m")
        text = str(node.value)
        if node.tag == "tag:yaml.org,2002:int":
            return timedelta(minutes=int(text))
        match = _DURATION.match(text)
        if not text.strip() or not match or not any(match.groups()):
            self.fail(f"{text!r} is not a duration", "a duration like 30m, 1h or 1h30m")
        d, h, m, s = (int(g) if g else 0 for g in match.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)

    def regex(self) -> builtins.str:
        text = self.str()
        try:
            re.compile(text)
        except re.error as exc:
            self.fail(f"invalid regular expression {text!r}: {exc}", "a Python regular expression")
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

    def str_list(self) -> builtins.list[builtins.str]:
        if isinstance(self.node, yaml.ScalarNode) and not self.is_null():
            return [self.str()]
        return [item.str() for item in self.list()]

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

    def dict_of_str(self, what: builtins.str) -> dict[builtins.str, builtins.str]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"found a {_kind(self.node)}", f"a mapping ({what})")
        out: dict[str, str] = {}
        for key_node, value_node in self.node.value:
            out[Node(self.file, key_node).str()] = Node(self.file, value_node).str()
        return out


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"value {node.value!r}" if node.value != "" else "empty value"


def _tag(node: yaml.ScalarNode) -> str:
    return node.tag.rsplit(":", 1)[-1]


def load_root(path: Path) -> Node:
    """Parse a YAML file into a located node, turning syntax errors into ConfigError."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, 0, "file not found", "a watchlist file (see README)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, 0, f"cannot read file: {exc}", "a readable UTF-8 file") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct began (an unclosed bracket or quote);
        # the problem mark is where the parser gave up, often the end of the file.
        start, stop = exc.context_mark, exc.problem_mark
        line = (start or stop).line + 1 if (start or stop) else 0
        problem = f"YAML syntax error: {exc.problem}"
        if start and stop and stop.line != start.line:
            problem += f" ({exc.context}, noticed at line {stop.line + 1})"
        raise ConfigError(name, line, problem, "valid YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, 0, f"YAML error: {exc}", "valid YAML") from None
    if node is None:
        raise ConfigError(name, 1, "the file is empty", "a watchlist mapping")
    return Node(name, node)
