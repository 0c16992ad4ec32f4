"""What X says is gone or hidden: partial errors (`errors[]` beside `data`) and `withheld` fields.

Shapes (docs.x.com, "Error responses" and the data dictionary): a partial error names its resource,
{"value", "detail", "title", "resource_type": "tweet"|"user", "parameter", "resource_id",
"type": ".../2/problems/resource-not-found"}. "Could not find tweet with ...: [id]." is a deleted post;
"User has been suspended: [id]." a suspended account; ".../not-authorized-for-resource" a protected
one. A post or user may carry `withheld`: {"copyright": bool, "country_codes": [...], "scope"}, where
XX means every country and XY a DMCA request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NOT_FOUND = "/problems/resource-not-found"
POST_ID = re.compile(r"^[0-9]{1,19}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
SUSPENDED_MARK = "⊘ account suspended"


@dataclass
class Problems:
    deleted: list[str] = field(default_factory=list)  # post ids X no longer finds: marked deleted if held
    suspended: set[str] = field(default_factory=set)  # user ids of suspended accounts
    other: int = 0  # protected, or any other problem: logged, nothing to mark


def read_problems(errors: Any) -> Problems:
    found = Problems()
    for error in errors if isinstance(errors, list) else ():
        if not isinstance(error, dict):
            found.other += 1
            continue
        kind, rid = error.get("type"), str(error.get("resource_id") or error.get("value") or "")
        detail = str(error.get("detail") or "").casefold()
        if not (isinstance(kind, str) and kind.endswith(NOT_FOUND) and POST_ID.match(rid)):
            found.other += 1
        elif error.get("resource_type") == "user" and "suspended" in detail:
            found.suspended.add(rid)
        elif error.get("resource_type") == "tweet" and rid not in found.deleted:
            found.deleted.append(rid)
        else:
            found.other += 1  # a user that no longer exists: its posts went with it
    return found


def withheld_note(item: dict[str, Any]) -> str:
    """'withheld in FR, DE' (or 'for copyright', 'everywhere') for an item X withholds, else ''."""
    held = item.get("withheld")
    if not isinstance(held, dict):
        return ""
    codes = held.get("country_codes")
    where = [c for c in codes if isinstance(c, str) and COUNTRY.match(c)] if isinstance(codes, list) else []
    if held.get("copyright") is True or "XY" in where:
        return "withheld for copyright"
    if "XX" in where:
        return "withheld everywhere"
    return "withheld in " + ", ".join(where[:20]) if where else "withheld"
