"""Networks by name, each imported only when something asks for it.

A watchlist names the sources and targets it uses; the others (and their HTTP clients, parsers, SDKs)
are never imported, so a desk on the demo starts without them. Entries are "module:attribute".
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


def resolve(where: str) -> object:
    """The attribute named by "package.module:attribute", importing its module now."""
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


class Lazy(Mapping[str, V], Generic[V]):
    """A read-only mapping whose values are imported on first access; names and `in` import nothing."""

    def __init__(self, where: Mapping[str, str]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, V] = {}

    def __getitem__(self, name: str) -> V:
        if name not in self._loaded:
            self._loaded[name] = resolve(self._where[name])  # type: ignore[assignment]
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where
