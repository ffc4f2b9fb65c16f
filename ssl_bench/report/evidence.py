"""Which jobs decide a rule, what was dropped and why, and the test a comparison of cells uses.

**Deciding jobs.** A job decides only when it ended with a final evaluation (``finished`` or
``collapsed``) and a finite number. ``diverged``, ``failed``, ``interrupted`` and ``running`` jobs
never decide, nor does a finished job whose metric is NaN or missing; a job whose results repeat
another job's bit for bit (the same computation, whatever its seed label) counts once; with a stated
protocol (the study's ``seed_sets``) a seed outside it is left out and a seed it names that has no
job is "not run". Every verdict's reason says how many seeds each arm lost and why.

**Gates (no verdict without evidence).** An arm (the jobs of one side of a comparison, in one cell)
gives no verdict, only ``inconclusive``, when fewer than :data:`MIN_SEEDS` seeds decide, or when it
lost a third or more of its planned seeds: the survivors of a sweep where seeds diverge are not a
random sample of seeds, so their mean is not the method's.

**Paired or unpaired.** Arms that share seeds (each arm one job per seed; one seed is one initial
network and one data order) are compared on per-seed contrasts over the seeds that decide in every
arm (a paired t-test, :func:`ssl_bench.report.statistics.paired`); otherwise by Welch's unpaired
t-test on the arms' summaries. Either way the evaluation split's binomial error is counted once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ssl_bench.report.cells import METRIC_STATUSES, Job, summary_of
from ssl_bench.report.statistics import Estimate, Summary, contrast, paired

MIN_SEEDS = 3  # deciding seeds an arm needs for a numeric comparison
NOT_RUN = "not run"
NO_NUMBER = "no number (NaN)"
REPEAT = "identical results to another job"
OUTSIDE = "outside the protocol's seeds"
NOT_SHARED = "not deciding in every arm"


class Blocked(Exception):
    """A comparison that cannot be made on the evidence there is (the reason is the message)."""


@dataclass
class Arm:
    """One side of a comparison in one cell: its jobs, the ones that decide, and what was dropped."""

    label: str
    jobs: list[Job]
    kept: list[Job] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    planned: int = 0  # the seeds the protocol names (else the seeds seen)

    @property
    def lost(self) -> int:
        return max(0, self.planned - len({str(j.seed) for j in self.kept}))

    def values(self) -> list[float]:
        return [j.value for j in self.kept if j.value is not None]

    def by_seed(self) -> dict[str, Job] | None:
        """Seed -> the deciding job; None when the arm is not one job per seed (not pairable)."""
        seeds = [j.seed for j in self.kept]
        if any(s is None for s in seeds) or len({str(s) for s in seeds}) != len(seeds):
            return None
        return {str(j.seed): j for j in self.kept}

    def seeds_seen(self) -> set[str]:
        return {str(j.seed) for j in self.jobs if j.seed is not None}


def arm(jobs: Sequence[Job], label: str, protocol: Sequence[str] | None = None) -> Arm:
    """The deciding jobs of ``jobs`` (see the module docstring) and the count of each reason to drop."""
    out = Arm(label=label, jobs=list(jobs))
    wanted = None if protocol is None else {str(s) for s in protocol}
    seen: set[Any] = set()
    for j in jobs:
        if wanted is not None and str(j.seed) not in wanted:
            out.dropped[OUTSIDE] += 1
        elif j.status not in METRIC_STATUSES:
            out.dropped[j.status] += 1
        elif j.value is None:
            out.dropped[NO_NUMBER] += 1
        elif j.fingerprint is not None and j.fingerprint in seen:
            out.dropped[REPEAT] += 1
        else:
            if j.fingerprint is not None:
                seen.add(j.fingerprint)
            out.kept.append(j)
    present = {str(j.seed) for j in jobs}
    if wanted is not None:
        missing = len(wanted - present)
        if missing:
            out.dropped[NOT_RUN] += missing
        out.planned = len(wanted)
    else:
        out.planned = len(present)
    return out


def dropped_text(arms: Sequence[Arm]) -> str:
    """``no seed dropped`` or ``dropped: tau_base=0: 2 of 6 (diverged 1, not run 1)``."""
    parts = []
    for a in arms:
        if a.dropped:
            why = ", ".join(f"{k} {n}" for k, n in a.dropped.items())
            parts.append(f"{a.label}: {sum(a.dropped.values())} of {len(a.jobs) + a.dropped[NOT_RUN]} ({why})")
    return "dropped: " + "; ".join(parts) if parts else "no seed dropped"


def gate(arms: Sequence[Arm], min_seeds: int = MIN_SEEDS) -> str | None:
    """Why the arms cannot decide (too few deciding seeds, too many lost), or None."""
    for a in arms:
        k = len(a.kept)
        if k < min_seeds:
            return f"{a.label}: {k} deciding seed{'s' if k != 1 else ''}, needs >= {min_seeds}"
        if a.lost and 3 * a.lost >= a.planned:
            return f"{a.label} lost {a.lost} of {a.planned} seeds: the survivors are not a random sample of seeds"
    return None


@dataclass
class Comparison:
    """A contrast of arms' means, the test it uses (paired or Welch) and the seeds behind it."""

    estimate: Estimate
    test: str  # "paired t-test" or "Welch t-test"
    n_pairs: int | None = None  # seeds shared by every arm (paired) or None (Welch)
    notes: list[str] = field(default_factory=list)

    @property
    def paired(self) -> bool:
        return self.n_pairs is not None


def shared_known(arms: Sequence[Arm], metric: str) -> list[float]:
    return [summary_of(a.kept, metric).known_var for a in arms]


def compare(terms: Sequence[tuple[float, Arm]], metric: str, min_seeds: int = MIN_SEEDS) -> Comparison:
    """``sum c_i mean(arm_i)``: paired on per-seed contrasts when the arms share seeds, else Welch.
    Raises :class:`Blocked` (too few or too many lost seeds) or a statistics error (n < 2, s = 0)."""
    arms = [a for _, a in terms]
    why = gate(arms, min_seeds)
    if why:
        raise Blocked(why)
    known = shared_known(arms, metric)
    once = sum(known) / len(known) if known else 0.0
    seeded = [a.by_seed() for a in arms]
    shared = set.intersection(*(a.seeds_seen() for a in arms)) if arms else set()
    if all(s is not None for s in seeded) and len(shared) >= 2:
        common = sorted(set.intersection(*(set(s) for s in seeded)), key=_seed_order)  # type: ignore[arg-type]
        planned = max(a.planned for a in arms)
        notes = []
        extra = sum(len(s) for s in seeded) - len(common) * len(arms)  # type: ignore[arg-type]
        if extra:
            notes.append(f"{extra} job(s) {NOT_SHARED} left out of the pairs")
        if len(common) < min_seeds:
            raise Blocked(f"{len(common)} seeds decide in every arm, needs >= {min_seeds}")
        if 3 * (planned - len(common)) >= planned:
            raise Blocked(f"{len(common)} of {planned} seeds decide in every arm: too many lost")
        diffs = [sum(c * s[seed].value for (c, _), s in zip(terms, seeded)) for seed in common]  # type: ignore[index]
        return Comparison(paired(diffs, once), "paired t-test", len(common), notes)
    sums = [summary_of(a.kept, metric) for a in arms]
    return Comparison(contrast([(c, s) for (c, _), s in zip(terms, sums)]), "Welch t-test")


def _seed_order(seed: str) -> tuple[int, Any]:
    try:
        return (0, float(seed))
    except ValueError:
        return (1, seed)


def summaries(arms: Sequence[Arm], metric: str) -> list[Summary]:
    return [summary_of(a.kept, metric) for a in arms]
