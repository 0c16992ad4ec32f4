"""Watch-term matching: compiled once into a single regex, so hundreds of terms cost one scan.

User patterns are searched apart, each with a time budget (monitor.core.patterns).

Text and terms are folded the same way (case, accents, spacing). A hit on a phrase also counts for
every shorter phrase inside it, so "toulouse metropole" still counts as "toulouse". An `exclude`
phrase masks that occurrence for its term ("Toulouse FC" is not a mention of Toulouse, but a post
about Toulouse FC that also names the mairie de Toulouse still matches). An `ignore` phrase drops
the whole mention (spam).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.core.config import Watchlist
from monitor.core.models import MatchResult, Mention, Priority
from monitor.core.patterns import PatternSet

_SPACES = re.compile(r"\s+")
# Combining marks left by NFKD decomposition (the accents of é, à, ç …): one regex pass, not a per-char loop.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Case- and accent-insensitive form: 'Tisséo  Métro' -> 'tisseo metro'."""
    return _SPACES.sub(" ", fold_case(text)).strip()


def fold_case(text: str) -> str:
    """fold() without the spacing: the hot path, since the compiled terms accept any run of spaces."""
    if not text.isascii():
        text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return text.casefold()


@dataclass
class _Roles:
    include: set[int] = field(default_factory=set)  # term indexes this phrase counts for
    exclude: set[int] = field(default_factory=set)  # term indexes this phrase masks
    ignore: bool = False
    priority: Priority | None = None


class Matcher:
    def __init__(self, watchlist: Watchlist) -> None:
        self.terms = watchlist.terms
        self._names = [t.name for t in self.terms]
        self._rank = [(_level(t.priority), i) for i, t in enumerate(self.terms)]
        self.rules = watchlist.priority_rules
        roles: dict[str, _Roles] = defaultdict(_Roles)
        for index, term in enumerate(self.terms):
            for phrase in term.keywords:
                roles[fold(phrase)].include.add(index)
            for tag in term.hashtags:
                roles["#" + fold(tag)].include.add(index)
            for account in term.accounts:
                roles["@" + fold(account).lstrip("@")].include.add(index)
            for phrase in term.exclude:
                roles[fold(phrase)].exclude.add(index)
        for phrase in watchlist.ignore:
            roles[fold(phrase)].ignore = True
        for rule in self.rules:
            for phrase in rule.keywords:
                r = roles[fold(phrase)]
                r.priority = rule.level if r.priority is None else min(r.priority, rule.level)
        roles.pop("", None)
        self._roles = self._with_subphrases(roles)
        self._regex = _alternation(self._roles) if self._roles else None
        patterns = [(i, p) for i, t in enumerate(self.terms) for p in t.patterns]
        self._pattern_terms = [i for i, _ in patterns]
        self._patterns = PatternSet([p for _, p in patterns])

    @staticmethod
    def _with_subphrases(roles: dict[str, _Roles]) -> dict[str, _Roles]:
        """Fold into each phrase the include and priority roles of the phrases it contains."""
        out: dict[str, _Roles] = {}
        for phrase, own in roles.items():
            merged = _Roles(set(own.include), set(own.exclude), own.ignore, own.priority)
            words = phrase.split(" ")
            subs = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
            subs |= {s[1:] for s in subs if s[:1] in "#@"}  # '#tisseo' also counts as 'tisseo'
            for sub in subs:
                if sub == phrase or sub not in roles:
                    continue
                merged.include |= roles[sub].include
                if (p := roles[sub].priority) is not None:
                    merged.priority = p if merged.priority is None else min(merged.priority, p)
            merged.include -= merged.exclude
            out[phrase] = merged
        return out

    def match(self, mention: Mention) -> MatchResult | None:
        """What a mention matched; one addressed to us is kept without a term (unless ignored as spam)."""
        return self.match_text(mention.text, mention.tags, mention.author, keep=mention.to_us)

    def match_text(
        self, text: str, tags: Iterable[str] = (), author: str = "", keep: bool = False
    ) -> MatchResult | None:
        folded = fold_case(text)
        if tags:
            folded += " #" + " #".join(fold_case(t) for t in tags)
        hits: set[int] = set()
        priority: Priority | None = None
        if self._regex is not None:
            for m in self._regex.finditer(folded):
                found = m.group(0)
                roles = self._roles.get(found) or self._roles[_SPACES.sub(" ", found)]
                if roles.ignore:
                    return None
                hits |= roles.include
                if roles.priority is not None:
                    priority = roles.priority if priority is None else min(priority, roles.priority)
        if self._patterns:
            hits.update(self._pattern_terms[n] for n in self._patterns.search(text))
        if not hits:
            return MatchResult((), Priority.NORMAL if priority is None else priority) if keep else None
        # The primary term (shown in the pane) is the most urgent one, then the first in the file.
        ordered = sorted(hits, key=self._rank.__getitem__) if len(hits) > 1 else list(hits)
        for i in ordered:
            level = self.terms[i].priority
            if level is not None:
                priority = level if priority is None else min(priority, level)
        return MatchResult(
            tuple(self._names[i] for i in ordered),
            Priority.NORMAL if priority is None else priority,
        )


def _level(priority: Priority | None) -> Priority:
    return Priority.NORMAL if priority is None else priority


def _alternation(roles: dict[str, _Roles]) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){_trie(sorted(roles))}(?!\w)")


_Trie = dict[str, "_Trie"]  # one child per next character; the key "" marks the end of a phrase


def _trie(phrases: list[str]) -> str:
    """The phrases as a prefix tree: a flat alternation of 2,000 phrases costs ~60x more per scan.

    Greedy optional groups make the longest phrase win at a position, as a longest-first list would.
    """
    root: _Trie = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: _Trie) -> str:
        alts = [(r"\s+" if ch == " " else re.escape(ch)) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        group = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{group})?" if "" in node else group

    return build(root)
