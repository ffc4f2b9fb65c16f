"""A verdict (a rule checked against our numbers: outcome, numbers, test, p-value), how per-cell
verdicts combine, and the context the rule kinds of :mod:`ssl_bench.report.rules` describe groups in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssl_bench.report.cells import Job, runs_text, summary_of
from ssl_bench.report.evidence import Arm, arm
from ssl_bench.report.statistics import Estimate, Summary
from ssl_bench.report.values import flatten, fmt, p_is, short_key, show

if TYPE_CHECKING:
    from ssl_bench.report.block import Study

HOLDS, NOT, INCONC, NA = "holds", "does not hold", "inconclusive", "n/a"
OUTCOMES = (HOLDS, NOT, INCONC, NA)
MARK = {HOLDS: "✓", NOT: "✗", INCONC: "?", NA: "–"}


# --- verdicts -------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """A rule checked against our numbers (or one cell's part of it, in ``cells`` of the whole)."""

    outcome: str
    detail: str  # the numbers, compact
    reason: str = ""  # why this outcome: the test and its p-value, or what is missing
    test: str | None = None
    p_value: float | None = None
    alpha: float = 0.05
    groups: list[dict[str, Any]] = field(default_factory=list)
    difference: dict[str, Any] | None = None
    p_against: float | None = None  # p of the "does not hold" test (None: no such test was possible)
    scope: str = ""  # the cell this sub-verdict is about ("" for the whole rule)
    cells: list[Verdict] = field(default_factory=list)
    kind: str = ""
    text: str = ""
    rule: dict[str, Any] = field(default_factory=dict)
    consistency: list[dict[str, Any]] = field(default_factory=list)  # each seed set on its own (not the rule)

    @property
    def holds(self) -> bool | None:
        return {HOLDS: True, NOT: False}.get(self.outcome)

    @property
    def mark(self) -> str:
        return MARK[self.outcome]

    def summary_line(self) -> str:
        """``outcome. numbers; test`` without the rule's text."""
        body = f"{self.outcome}."
        if self.cells:
            return f"{self.outcome} ({self.reason})."
        return " ".join(x for x in (body, self.detail + (f"; {self.reason}" if self.reason else "")) if x)

    def line(self) -> str:
        flag = self.rule.get("full_variant_only")
        head = f"{self.mark} {self.text}" + (f" [full variant only: {flag}]" if flag else "")
        return f"{head}: {self.summary_line()}" + self.consistency_text()

    def consistency_text(self) -> str:
        """`` Seed sets on their own (a consistency check, not the rule): 0-2 holds, 10-12 inconclusive.``"""
        if not self.consistency:
            return ""
        sets = ", ".join(f"{c['seeds']} {c['outcome']}" for c in self.consistency)
        return f" Seed sets on their own (a consistency check, not the rule): {sets}."

    def sub_lines(self) -> list[str]:
        return [f"{c.scope}: {c.mark} {c.summary_line()}" for c in self.cells]

    def as_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "text": self.text,
            "outcome": self.outcome,
            "holds": self.holds if self.outcome in (HOLDS, NOT) else self.outcome,
            "detail": self.detail,
            "reason": self.reason,
            "test": self.test,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "groups": self.groups,
            "difference": self.difference,
            "p_against": self.p_against,
        }
        if self.consistency:
            out["consistency"] = self.consistency
        if self.scope:
            out["scope"] = self.scope
        if self.cells:
            out["cells"] = [c.as_dict() for c in self.cells]
        if self.rule:
            out["rule"] = self.rule
        return out


def combine(subs: list[Verdict], alpha: float) -> Verdict:
    """Per-cell sub-verdicts -> one claim that is about every cell. Holds when it holds in every cell
    (each at ``alpha``: an intersection-union test) and no cell is n/a (never run: a claim about every
    cell cannot hold from the cells that exist); does not hold when some cell's "does not hold" test
    survives Holm's correction over the cells; else inconclusive (n/a when no cell was run)."""
    from ssl_bench.report.statistics import holm

    counts = {o: sum(s.outcome == o for s in subs) for o in OUTCOMES}
    verbs = {
        HOLDS: ("holds", "hold"),
        NOT: ("does not hold", "do not hold"),
        INCONC: ("inconclusive",) * 2,
        NA: ("n/a",) * 2,
    }
    reason = "per cell: " + ", ".join(f"{n} {verbs[o][n > 1]}" for o, n in counts.items() if n)
    against = [s.p_against if s.p_against is not None and s.outcome == NOT else 1.0 for s in subs]
    adjusted = holm(against)
    p_not = min(adjusted) if adjusted else 1.0
    if counts[NA] == len(subs):
        outcome = NA
    elif counts[HOLDS] == len(subs):
        outcome = HOLDS
    elif p_not < alpha:
        outcome = NOT
    else:
        outcome = INCONC
    if counts[NA] and counts[NA] < len(subs):
        reason += f"; {counts[NA]} never run: cannot hold"
    if counts[NOT]:
        reason += f"; does not hold in some cell: Holm over {len(subs)} cells, {p_text(p_not, alpha)}"
    return Verdict(
        outcome=outcome,
        detail="; ".join(f"{s.scope}: {s.outcome}" for s in subs),
        reason=reason,
        test="per cell (Holm over the cells for does not hold)",
        p_against=p_not if counts[NOT] else None,
        alpha=alpha,
        cells=subs,
    )


# --- the evaluation context -----------------------------------------------------------------------
class Context:
    """The study's table keys and metric, the jobs, and how to describe a group of them."""

    def __init__(self, study: Study, jobs: Sequence[Job], protocol: Sequence[str] | None = None):
        self.study, self.jobs = study, list(jobs)
        self.keys = list(study.keys)
        self.protocol = protocol if protocol is not None else study.seeds  # None: no stated seeds

    def arm(self, label: str, jobs: Sequence[Job]) -> Arm:
        """The jobs of one side of a comparison: what decides and what was dropped."""
        return arm(jobs, label, self.protocol)

    @property
    def scale(self) -> float:
        return self.study.scale

    def summary(self, jobs: Sequence[Job]) -> Summary:
        return summary_of(jobs, self.study.metric)

    def num(self, value: float | None) -> str:
        return fmt(value, self.scale)

    def label(self, where: dict[str, Any] | None) -> str:
        where = flatten(where)
        keys = list(self.keys) + [k for k in where if k not in self.keys]
        return ", ".join(f"{short_key(k, keys)}={show(v)}" for k, v in where.items()) or "all jobs"

    def cell_label(self, keys: Sequence[str], values: Sequence[Any]) -> str:
        names = list(dict.fromkeys(self.keys + list(keys)))
        return ", ".join(f"{short_key(k, names)}={show(v)}" for k, v in zip(keys, values)) or "all jobs"

    def stats(self, s: Summary) -> str:
        """``15.2 ± 0.8 (n=3)``: mean ± 95% CI half-width."""
        if s.mean is None:
            return "no number"
        half = s.half_width()
        return (f"{self.num(s.mean)} ± {self.num(half)}" if half is not None else self.num(s.mean)) + f" (n={s.n})"

    def describe(self, label: str, jobs: Sequence[Job]) -> str:
        """``stop_grad=false: 15.2 ± 0.8 (n=3), collapsed 3/3``."""
        if not jobs:
            return f"{label}: no jobs"
        return f"{label}: {self.stats(self.summary(jobs))}, {runs_text(jobs)}"

    def group_dict(self, label: str, jobs: Sequence[Job]) -> dict[str, Any]:
        s = self.summary(jobs)
        ci = s.ci()
        return {
            "label": label,
            "n": s.n,
            "jobs": len(jobs),
            "mean": rounded(s.mean),
            "std": rounded(s.std),
            "se": rounded(s.se),
            "ci": None if ci is None else [rounded(ci[0]), rounded(ci[1])],
            "binomial_var": rounded(s.known_var),
            "runs": runs_text(jobs),
        }

    def diff(self, est: Estimate, what: str, alpha: float, margin: float | None = None) -> tuple[dict[str, Any], str]:
        """The difference as a dict (verdicts.json) and as text: ``b - a = 29.9 [26.5, 33.3]``."""
        lo, hi = est.ci(alpha)
        level = f"{100 * (1 - alpha):g}% CI"
        text = f"{what} = {self.num(est.value)} [{self.num(lo)}, {self.num(hi)}] ({level})"
        if margin:
            text += f", margin {margin:g}"
        return {
            "what": what,
            "estimate": rounded(est.value),
            "ci": [rounded(lo), rounded(hi)],
            "se": rounded(est.se),
            "df": None if est.df == float("inf") else rounded(est.df),
            "margin": margin,
        }, text


def rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def p_text(p: float, alpha: float) -> str:
    return f"{p_is(p)} {'<' if p < alpha else '>='} {alpha:g}"
