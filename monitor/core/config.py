"""The watchlist: typed, strict, with errors that name the file and line."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import yaml

from monitor.core.dburl import is_database_url, url_problem
from monitor.core.holidaycodes import COUNTRY_CODES
from monitor.core.models import Priority
from monitor.core.templates import VARIABLES, Template, TemplateUse, template_problem
from monitor.core.timeutil import parse_date
from monitor.core.yamlread import ConfigError, Node, load_root

__all__ = ["ConfigError", "SourceKind", "Template", "TemplateUse", "Watchlist", "load_watchlist"]

DEFAULT_DISMISS_REASONS = ("spam", "off-topic", "duplicate", "no action needed", "abusive", "other")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
# A phrase is compiled into a prefix tree one level per character: bounded, so the tree cannot exhaust the stack.
MAX_PHRASE = 100
MAX_KEY = 40  # a key binding's text, such as "ctrl+shift+r,f5"


@dataclass(frozen=True)
class Term:
    name: str
    keywords: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    priority: Priority | None = None


@dataclass(frozen=True)
class PriorityRule:
    level: Priority
    keywords: tuple[str, ...]


class SourceKind(Protocol):
    """What the watchlist needs of a source `type:`: its keys, how it reads them, how often it polls.

    Each network defines its own (monitor.networks.SOURCE_TYPES); the caller passes them in, so the
    core reads a watchlist without knowing any network.
    """

    @property
    def option_keys(self) -> tuple[str, ...]: ...

    @property
    def parse_options(self) -> Callable[[dict[str, Node], Node], object]: ...

    @property
    def default_interval(self) -> timedelta: ...


@dataclass(frozen=True)
class SourceSpec:
    name: str
    type: str
    poll_interval: timedelta
    options: Any
    line: int = 0


class TargetType(StrEnum):
    """How an escalation reaches a service."""

    APPRISE = "apprise"  # a notification (mail, chat...) through Apprise
    WEBHOOK = "webhook"  # a JSON POST
    OPEN311 = "open311"  # a service request, followed until the service closes it


@dataclass(frozen=True)
class ServiceTarget:
    type: TargetType
    url: str | None = None
    url_env: str | None = None
    service_code: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    description: str = ""
    targets: tuple[ServiceTarget, ...] = ()


@dataclass(frozen=True)
class Targets:
    first_response: timedelta = timedelta(hours=1)
    warning: timedelta = timedelta(minutes=45)
    resolution: timedelta | None = None  # escalation to fix; statistics only


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (0 = Monday) and the holiday calendar."""

    days: dict[int, tuple[time, time]] = field(default_factory=dict)
    holidays_country: str | None = None
    holidays_subdiv: str | None = None
    extra_holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Watchlist:
    path: Path
    city: str
    timezone: str
    database: Path  # the SQLite file, unless database_url names a PostgreSQL database
    targets: Targets
    terms: tuple[Term, ...]
    ignore: tuple[str, ...]
    priority_rules: tuple[PriorityRule, ...]
    sources: tuple[SourceSpec, ...]
    services: tuple[Service, ...]
    templates: tuple[Template, ...]
    dismiss_reasons: tuple[str, ...] = DEFAULT_DISMISS_REASONS
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    keys: dict[str, str] = field(default_factory=dict)
    state_dir: Path | None = None  # per-user state; None: the XDG state directory (monitor.core.paths)
    key_lines: dict[str, int] = field(default_factory=dict, compare=False)  # where each remap is, for errors
    database_url: str | None = None  # `database: postgresql://...`: the desk's store is that server

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def source(self, name: str) -> SourceSpec | None:
        return next((s for s in self.sources if s.name == name), None)


TOP_KEYS = (
    "city",
    "timezone",
    "database",
    "targets",
    "terms",
    "ignore",
    "priority",
    "sources",
    "services",
    "templates",
    "dismiss_reasons",
    "business_hours",
    "keys",
    "state_dir",
)


def _database_url(node: Node) -> str | None:
    """A PostgreSQL URL in `database:`, checked (never with a password); None for a SQLite file's path."""
    value = node.str()
    if not is_database_url(value):
        return None
    problem = url_problem(value)
    if problem:
        node.fail(problem, "postgresql://user@host/database")
    return value


def load_watchlist(path: str | Path, source_types: Mapping[str, SourceKind] | None) -> Watchlist:
    """Read and check a watchlist; `source_types` reads each source's own options (by its `type:`).

    None: for the commands that never open a source (the reports), which then neither import the networks
    nor read the sources (left to the commands that use them: check, collect, the app)."""
    path = Path(path)
    root = load_root(path)
    top = root.mapping(TOP_KEYS, required=("city", "terms", "sources"), what="the watchlist")
    database_url = _database_url(top["database"]) if "database" in top else None
    database = Path(top["database"].str()) if "database" in top and not database_url else Path("monitor.db")
    if not database.is_absolute():
        database = path.parent / database
    zone = top["timezone"].str() if "timezone" in top else "Europe/Paris"
    _check_zone(top.get("timezone"), zone)
    sources = tuple(_source(n, source_types) for n in top["sources"].list()) if source_types is not None else ()
    _unique([s.name for s in sources], top["sources"], "source name")
    services = tuple(_service(n) for n in top["services"].list()) if "services" in top else ()
    _unique([s.id for s in services], top.get("services") or root, "service id")
    return Watchlist(
        path=path,
        city=top["city"].str(),
        timezone=zone,
        database=database,
        database_url=database_url,
        targets=_targets(top["targets"]) if "targets" in top else Targets(),
        terms=_terms(top["terms"]),
        ignore=tuple(top["ignore"].str_list(MAX_PHRASE)) if "ignore" in top else (),
        priority_rules=_priority(top["priority"]) if "priority" in top else (),
        sources=sources,
        services=services,
        templates=tuple(_template(n) for n in top["templates"].list()) if "templates" in top else (),
        dismiss_reasons=tuple(top["dismiss_reasons"].str_list())
        if "dismiss_reasons" in top
        else DEFAULT_DISMISS_REASONS,
        business_hours=_hours(top["business_hours"]) if "business_hours" in top else BusinessHours(),
        state_dir=path.parent / Path(top["state_dir"].str()).expanduser() if "state_dir" in top else None,
        keys=top["keys"].dict_of_str("action id: key", MAX_KEY) if "keys" in top else {},
        key_lines=_lines(top["keys"]) if "keys" in top else {},
    )


def _lines(node: Node) -> dict[str, int]:
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.node.value}


def _check_zone(node: Node | None, zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        if node is not None:
            node.fail(f"unknown time zone {zone!r}", "an IANA zone such as Europe/Paris")


def _unique(names: list[str], node: Node, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            node.fail(f"duplicate {what} {name!r}", f"each {what} once")
        seen.add(name)


def _targets(node: Node) -> Targets:
    f = node.mapping(("first_response", "warning", "resolution"), what="targets")
    first = f["first_response"].duration() if "first_response" in f else timedelta(hours=1)
    warning = f["warning"].duration() if "warning" in f else first * 3 / 4
    if warning > first:
        f["warning"].fail("the warning comes after the target", "a warning shorter than first_response")
    return Targets(first, warning, f["resolution"].duration() if "resolution" in f else None)


def _level(node: Node) -> Priority:
    return Priority[node.choice([p.label for p in Priority]).upper()]


def _terms(node: Node) -> tuple[Term, ...]:
    items = node.list()
    if not items:
        node.fail("no watch terms", "at least one term under 'terms'")
    terms = []
    for item in items:
        f = item.mapping(
            ("name", "keywords", "hashtags", "accounts", "patterns", "exclude", "priority"),
            required=("name",),
            what="a term",
        )
        term = Term(
            name=f["name"].str(),
            keywords=tuple(f["keywords"].str_list(MAX_PHRASE)) if "keywords" in f else (),
            hashtags=tuple(h.lstrip("#") for h in f["hashtags"].str_list(MAX_PHRASE)) if "hashtags" in f else (),
            accounts=tuple(f["accounts"].str_list(MAX_PHRASE)) if "accounts" in f else (),
            patterns=tuple(n.regex() for n in f["patterns"].list()) if "patterns" in f else (),
            exclude=tuple(f["exclude"].str_list(MAX_PHRASE)) if "exclude" in f else (),
            priority=_level(f["priority"]) if "priority" in f else None,
        )
        if not (term.keywords or term.hashtags or term.accounts or term.patterns):
            item.fail(f"term {term.name!r} matches nothing", "keywords, hashtags, accounts or patterns")
        terms.append(term)
    _unique([t.name for t in terms], node, "term name")
    return tuple(terms)


def _priority(node: Node) -> tuple[PriorityRule, ...]:
    f = node.mapping([p.label for p in Priority], what="priority rules")
    return tuple(PriorityRule(Priority[k.upper()], tuple(v.str_list(MAX_PHRASE))) for k, v in f.items())


def _source(node: Node, source_types: Mapping[str, SourceKind]) -> SourceSpec:
    if not isinstance(node.node, yaml.MappingNode):
        node.fail("a source must be a mapping", "keys name and type")
    common = ("name", "type", "poll_interval", "enabled")
    type_node = next((Node(node.file, v) for k, v in node.node.value if k.value == "type"), None)
    if type_node is None:
        node.fail("missing key 'type' in a source", "type: " + " | ".join(source_types))
    kind = type_node.choice(source_types)
    source_type = source_types[kind]
    f = node.mapping(common + source_type.option_keys, required=("name", "type"), what=f"a {kind} source")
    interval = f["poll_interval"].duration() if "poll_interval" in f else source_type.default_interval
    if interval.total_seconds() <= 0:
        f["poll_interval"].fail("poll_interval must be positive", "a duration like 60s")
    options = source_type.parse_options({k: v for k, v in f.items() if k not in common}, node)
    return SourceSpec(f["name"].str(), kind, interval, options, node.line)


def _service(node: Node) -> Service:
    f = node.mapping(("id", "name", "description", "targets"), required=("id", "name"), what="a service")
    targets = []
    for t in f["targets"].list() if "targets" in f else []:
        tf = t.mapping(("type", "url", "url_env", "service_code", "api_key_env"), required=("type",), what="a target")
        target = ServiceTarget(
            type=TargetType(tf["type"].choice(TargetType)),
            url=tf["url"].str() if "url" in tf else None,
            url_env=tf["url_env"].str() if "url_env" in tf else None,
            service_code=tf["service_code"].str() if "service_code" in tf else None,
            api_key_env=tf["api_key_env"].str() if "api_key_env" in tf else None,
        )
        if not (target.url or target.url_env):
            t.fail("a target needs an address", "url (no secrets) or url_env (an environment variable)")
        targets.append(target)
    return Service(
        id=f["id"].str(),
        name=f["name"].str(),
        description=f["description"].str() if "description" in f else "",
        targets=tuple(targets),
    )


def _template(node: Node) -> Template:
    f = node.mapping(("id", "name", "text", "lang", "use"), required=("id", "text"), what="a template")
    text = f["text"].str().strip()
    if problem := template_problem(text):
        f["text"].fail(problem, "only the variables " + ", ".join("{" + v + "}" for v in VARIABLES))
    return Template(
        id=f["id"].str(),
        name=f["name"].str() if "name" in f else f["id"].str(),
        text=text,
        lang=f["lang"].str() if "lang" in f else None,
        use=TemplateUse(f["use"].choice(TemplateUse)) if "use" in f else TemplateUse.REPLY,
    )


def _hours(node: Node) -> BusinessHours:
    f = node.mapping((*WEEKDAYS, "holidays", "subdivision", "extra_holidays"), what="business_hours")
    days: dict[int, tuple[time, time]] = {}
    for i, day in enumerate(WEEKDAYS):
        if day not in f or f[day].is_null():
            continue
        text = f[day].str().strip()
        if text.lower() == "closed":
            continue
        m = _HOURS.match(text)
        if not m:
            f[day].fail(f"{text!r} is not a range of hours", "HH:MM-HH:MM, or closed")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60) or (h2, m2) <= (h1, m1):
            f[day].fail(f"{text!r} is not a valid range", "an opening before the closing, within a day")
        days[i] = (time(h1, m1), time(h2, m2))
    extra = []
    for item in f["extra_holidays"].items() if "extra_holidays" in f else []:
        try:
            extra.append(parse_date(item.str(max_length=10)).isoformat())
        except ValueError:
            item.fail(f"{item.str()!r} is not a date", "YYYY-MM-DD, such as 2025-07-14")
    hours = BusinessHours(
        days=days,
        holidays_country=f["holidays"].str() if "holidays" in f else None,
        holidays_subdiv=f["subdivision"].str() if "subdivision" in f else None,
        extra_holidays=tuple(extra),
    )
    if hours.holidays_country:
        _check_holidays(f, hours.holidays_country, hours.holidays_subdiv)
    return hours


def _check_holidays(f: dict[str, Node], country: str, subdiv: str | None) -> None:
    # A country code is known without importing holidays (holidaycodes.py); the registry names every other
    # calendar (aliases, class names: what country_holidays accepts) without loading one. A country's own
    # calendar takes a tenth of a second, and only a subdivision needs it.
    if subdiv is None and country in COUNTRY_CODES:
        return
    from holidays.registry import COUNTRIES

    if country not in {name for names in COUNTRIES.values() for name in names}:
        f["holidays"].fail(f"no holiday calendar for {country!r}", "a country code such as FR, BE or CH")
    if subdiv is None:
        return
    from monitor.core.holidaycal import country_holidays

    try:
        country_holidays(country, subdiv=subdiv)
    except NotImplementedError:
        f["subdivision"].fail(f"no subdivision {subdiv!r} for {country}", "a subdivision of that country, or none")
