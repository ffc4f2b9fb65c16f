"""The registry of rule kinds: each kind's function, its fields, the keys it compares along (the
rest of the table's keys: evaluated per cell) and the jobs it looks at. The kinds themselves live in
one module per family (:mod:`~ssl_bench.report.status_rules`, :mod:`~ssl_bench.report.pair_rules`,
:mod:`~ssl_bench.report.interior_rules`, :mod:`~ssl_bench.report.drop_rules`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ssl_bench.report.cells import Job, select
from ssl_bench.report.evidence import Arm, dropped_text
from ssl_bench.report.values import flatten
from ssl_bench.report.verdict import Context, Verdict

COMMON = ("kind", "text", "note", "alpha", "full_variant_only")  # fields every kind accepts


@dataclass(frozen=True)
class Kind:
    fn: Callable[[dict[str, Any], Context, list[Job], float], Verdict]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    bound: Callable[[dict[str, Any]], set[str]]  # keys the rule compares along (the rest: per cell)
    scope: Callable[[dict[str, Any], list[Job]], list[Job]]  # the jobs the rule looks at
    min_deciding: str  # the least evidence a verdict needs, in words (docs/guides/reports.md, verdicts.json)


RULES: dict[str, Kind] = {}


def keys_of(*maps: Any) -> set[str]:
    return {k for m in maps if isinstance(m, dict) for k in flatten(m)}


def where_scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return select(jobs, rule.get("where"))


def register(
    name: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    bound: Callable[[dict[str, Any]], set[str]] | None = None,
    scope: Callable[[dict[str, Any], list[Job]], list[Job]] = where_scope,
    min_deciding: str = "",
) -> Callable:
    """Register a rule kind: ``fn(rule, ctx, jobs, alpha) -> Verdict`` on the jobs of one cell."""

    def deco(fn: Callable) -> Callable:
        RULES[name] = Kind(fn, required, optional, bound or (lambda r: keys_of(r.get("where"))), scope, min_deciding)
        return fn

    return deco


def with_dropped(verdict: Verdict, arms: list[Arm]) -> Verdict:
    """The verdict with its reason saying how many seeds each arm lost and why."""
    text = dropped_text(arms)
    verdict.reason = f"{verdict.reason}; {text}" if verdict.reason else text
    return verdict
