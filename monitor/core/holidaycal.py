"""Public holidays of one country, loading only that country: the holidays package's own loader imports all
of its countries (some 250 modules, 0.1-0.2 s) before it hands one over, at every start of every command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import holidays
from holidays.registry import COUNTRIES


def country_holidays(country: str, subdiv: str | None = None) -> holidays.HolidayBase:
    """What holidays.country_holidays(country, subdiv=subdiv) gives (NotImplementedError for an unknown
    country or subdivision); anything unexpected in the package's layout falls back to it."""
    entity = _entity(country)
    if entity is None:
        return holidays.country_holidays(country, subdiv=subdiv)
    calendar: holidays.HolidayBase = entity(subdiv=subdiv)
    return calendar


def _entity(country: str) -> type[holidays.HolidayBase] | None:
    module = next((name for name, (_cls, *codes) in COUNTRIES.items() if country in codes), None)
    if module is None:
        return None
    name = f"holidays.countries.{module}"
    try:
        loaded = sys.modules.get(name)
        if loaded is None:
            spec = importlib.util.spec_from_file_location(
                name, Path(holidays.__file__).parent / "countries" / f"{module}.py"
            )
            if spec is None or spec.loader is None:
                return None
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded  # as the package would register it: a later full import reuses it
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                del sys.modules[name]
                raise
        entity = getattr(loaded, country)
    except (ImportError, OSError, AttributeError):
        return None
    return entity if isinstance(entity, type) and issubclass(entity, holidays.HolidayBase) else None
