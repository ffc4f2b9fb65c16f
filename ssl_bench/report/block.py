"""The ``study`` block of a sweep's jobs (``config.study``, from ``conf/study/<study>.yaml``): the
table's keys, the metric and the paper's claims as rules. Checked once, with one-line errors."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_bench.report.cells import ReportError, metric_range, metric_scale, short_metric
from ssl_bench.report.rules import COMMON, RULES
from ssl_bench.report.statistics import ALPHA
from ssl_bench.report.status_rules import DECIDABLE
from ssl_bench.report.values import flatten, normalize, same, seed_label, show

StudyError = ReportError
# keys that say how the report reads a sweep, not what a job computes: taken from conf/study/ as it is now
INTERPRETATION = ("title", "metric_label", "reference_metric", "rules", "alpha", "metric_range", "seed_sets", "compare")


@dataclass(frozen=True)
class Study:
    """The ``study`` block of a sweep's jobs (``config.study``)."""

    name: str
    rows: tuple[str, ...]
    columns: tuple[str, ...] = ()
    metric: str = "knn_acc"
    metric_label: str = ""
    title: str = ""
    variant: str | None = None
    rules: tuple[dict[str, Any], ...] = ()
    reference_metric: str | None = None  # which of the reference table's metrics to show (it may list several)
    alpha: float = ALPHA  # default significance level of the rules
    value_range: tuple[float, float] | None = None  # the metric's possible values, display units
    seed_sets: tuple[tuple[str, ...], ...] = ()  # the protocol: the seeds, stated before the sweep
    compare: bool = False  # the table says what each cell is significantly better than (ranking.py)
    block: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_block(cls, block: dict[str, Any]) -> Study:
        if not isinstance(block, dict) or not block.get("name"):
            raise StudyError("the study block needs a name")
        name = str(block["name"])
        rows, columns = block.get("rows") or [], block.get("columns") or []
        rows, columns = ([keys] if isinstance(keys, str) else list(keys) for keys in (rows, columns))
        if not rows or not all(isinstance(k, str) for k in list(rows) + list(columns)):
            raise StudyError(f"study {name}: rows must be a non-empty list of dotted config keys")
        metric = str(block.get("metric") or "knn_acc")
        alpha = block.get("alpha", ALPHA)
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha <= 0.5:
            raise StudyError(f"study {name}: alpha={alpha!r}; allowed: a number in (0, 0.5]")
        span = _range(name, block.get("metric_range"), metric)
        seed_sets = _seed_sets(name, block.get("seed_sets"))
        compare = block.get("compare", False)
        if not isinstance(compare, bool):
            raise StudyError(f"study {name}: compare={compare!r}; allowed: true, false")
        study = cls(
            name=name,
            rows=tuple(rows),
            columns=tuple(columns),
            metric=metric,
            metric_label=str(block.get("metric_label") or metric),
            title=str(block.get("title") or name),
            variant=block.get("variant"),
            rules=tuple(block.get("rules") or []),
            reference_metric=block.get("reference_metric"),
            alpha=float(alpha),
            value_range=span,
            seed_sets=seed_sets,
            compare=compare,
            block=dict(block),
        )
        for i, rule in enumerate(study.rules):
            check_rule(i, rule, study)
        return study

    @property
    def keys(self) -> tuple[str, ...]:
        """The table's keys: a cell is one combination of their values."""
        return self.rows + self.columns

    @property
    def seeds(self) -> tuple[str, ...] | None:
        """Every seed of the protocol (all sets pooled: the verdict's seeds), None when not stated."""
        return tuple(s for group in self.seed_sets for s in group) if self.seed_sets else None

    @property
    def protocol(self) -> str:
        """``6 seeds in 2 sets (0-2, 10-12), pooled`` or ``seeds not stated``."""
        if not self.seed_sets:
            return "seeds not stated (the seeds found are used)"
        sets = ", ".join(seed_label(s) for s in self.seed_sets)
        n = sum(len(s) for s in self.seed_sets)
        many = len(self.seed_sets) > 1
        return f"{n} seeds" + (f" in {len(self.seed_sets)} sets ({sets}), pooled" if many else f" ({sets})")

    @property
    def scale(self) -> float:
        return metric_scale(self.metric)

    @property
    def short(self) -> str:
        return short_metric(self.metric)

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.variant})" if self.variant else self.title


def _seed_sets(name: str, value: Any) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(g, (list, tuple)) and g and all(isinstance(s, int) and not isinstance(s, bool) for s in g)
        for g in value
    )
    flat = [s for g in value for s in g] if ok else []
    if not ok or not value or len(flat) != len(set(flat)):
        raise StudyError(f"study {name}: seed_sets={value!r}; allowed: disjoint non-empty lists of integer seeds")
    return tuple(tuple(str(s) for s in g) for g in value)


def _range(name: str, value: Any, metric: str) -> tuple[float, float] | None:
    if value is None:
        return metric_range(metric)
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and value[0] < value[1]
    )
    if not ok:
        raise StudyError(f"study {name}: metric_range={value!r}; allowed: [low, high] in table units")
    return float(value[0]), float(value[1])


def current_block(name: str) -> dict[str, Any] | None:
    """The study's definition as it is now (``conf/study/<name>.yaml``), or None."""
    from omegaconf import OmegaConf

    from ssl_bench.config import config_dir

    path = Path(config_dir()) / "study" / f"{name}.yaml"
    if not path.is_file():
        return None
    block = OmegaConf.to_container(OmegaConf.load(path))
    return block if isinstance(block, dict) else None


def study_of(records: Sequence[dict[str, Any]], rules: str = "recorded") -> Study | None:
    """The study shared by the records (None when none has a study block). ``rules="current"`` takes
    the interpretation (rules, title, labels, reference metric) from the study's current definition in
    ``conf/study/`` when there is one, so a rule edited after the sweep applies without rerunning it;
    ``recorded`` uses the block saved in the records."""
    blocks = [(r.get("config") or {}).get("study") for r in records]
    blocks = [b for b in blocks if b]
    if not blocks:
        return None
    names = sorted({str(b.get("name")) for b in blocks if isinstance(b, dict)})
    if len(names) > 1:
        raise StudyError(f"records of several studies ({', '.join(names)}): report one sweep at a time")
    if not isinstance(blocks[0], dict):
        raise StudyError(f"the study block must be a mapping, got {blocks[0]!r}")
    block = dict(blocks[0])
    current = current_block(names[0]) if rules == "current" and names else None
    if current is not None:
        block.update({k: current[k] for k in INTERPRETATION if k in current})
    return Study.from_block(block)


# --- checking a rule ------------------------------------------------------------------------------
def check_rule(i: int, rule: Any, study: Study) -> None:
    """One-line errors for a rule that cannot be evaluated, or cannot fail."""
    where = f"rule {i + 1}"
    if not isinstance(rule, dict) or rule.get("kind") not in RULES:
        kind = rule.get("kind") if isinstance(rule, dict) else rule
        raise StudyError(f"{where}: unknown kind {kind!r}; kinds: {', '.join(RULES)}")
    name = rule["kind"]
    where = f"{where} ({name})"
    kind = RULES[name]
    allowed = COMMON + kind.required + kind.optional
    for key in rule:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise StudyError(f"{where}: unknown field {key!r}.{hint} Fields: {', '.join(allowed)}")
    missing = [f for f in kind.required if f not in rule]
    if name == "status" and ("is" in rule) == ("is_not" in rule):
        missing.append("one of is / is_not")
    if missing:
        raise StudyError(f"{where}: missing {', '.join(missing)}")
    named = rule.get("is", rule.get("is_not", rule.get("or_status")))
    if named is not None and named not in DECIDABLE:
        raise StudyError(
            f"{where}: status {named!r} never decides (only jobs with a final evaluation do); "
            f"allowed: {', '.join(DECIDABLE)}"
        )
    for key in ("where", "a", "b"):
        if key in rule and not isinstance(rule[key], dict):
            raise StudyError(f"{where}: {key} must map dotted keys to values")
    _check_numbers(where, rule)
    if "a" in rule and "b" in rule:
        a, b = flatten(rule["a"]), flatten(rule["b"])
        if not any(k in b and normalize(v) != normalize(b[k]) for k, v in a.items()):
            raise StudyError(f"{where}: a and b can select the same job; give one key different values in a and b")
    if name == "larger_drop":
        for x, y in (("base", "ablated"), ("more", "less")):
            if same(rule[x], rule[y]):
                raise StudyError(f"{where}: {x} and {y} are the same value ({show(rule[x])})")
    if name == "equivalent" and float(rule["margin"]) <= 0:
        raise StudyError(f"{where}: margin={rule['margin']} must be > 0 (the equivalence bounds are +-margin)")
    span = study.value_range
    if span is not None and "margin" in rule:
        effect = (span[1] - span[0]) * (2 if name == "larger_drop" else 1)
        if abs(float(rule["margin"])) >= effect:
            raise StudyError(
                f"{where}: margin {rule['margin']} is larger than any possible effect ({effect:g}: "
                f"{study.metric} spans {span[0]:g}-{span[1]:g}): the rule cannot fail"
            )


def _check_numbers(where: str, rule: dict[str, Any]) -> None:
    def number(key: str) -> Any:
        value = rule[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise StudyError(f"{where}: {key}={value!r} must be a number")
        return value

    if "margin" in rule:
        number("margin")
    if "alpha" in rule and not 0 < number("alpha") <= 0.5:
        raise StudyError(f"{where}: alpha={rule['alpha']} must be in (0, 0.5]")
    if "min_n" in rule and (not isinstance(rule["min_n"], int) or isinstance(rule["min_n"], bool) or rule["min_n"] < 1):
        raise StudyError(f"{where}: min_n={rule['min_n']!r} must be an integer >= 1")
