"""Study sweep -> the paper's table: our numbers beside the published ones, and a verdict per rule.

Every job of a study sweep carries the same ``study`` block in its resolved config: the row keys
(the ablation axes), optional column keys, the metric, and the paper's claims as rules. Jobs are
grouped by the config values of the row and column keys; each cell holds the mean ± std of the
metric over its seeds and the count of every status, so failed, diverged and collapsed jobs are
always visible. A failed (or diverged) job has no final evaluation and contributes no number.

Numbers are shown, compared and written in display units: percent for ``*_acc`` metrics, the
metric's own unit otherwise. A rule's ``margin`` is in the same units.

Rules (``study.rules``; ``where``/``a``/``b`` map dotted config keys to values, compared type-tolerantly;
each verdict holds, does not hold, or is n/a when the jobs it needs are missing or have no number):

- ``status``: ``where``, ``is: S`` (every matching job has status S) or ``is_not: S`` (none has).
- ``less``: ``a``, ``b``, ``margin`` (default 0): mean(a) < mean(b) - margin.
- ``less_or_status``: ``less`` that also holds when every job of ``a`` has status ``or_status``.
- ``interior_argmax``: ``axis``, ``where`` (optional): along the axis (values sorted), the best mean
  is at an inner value, strictly above both ends.
- ``interior_argmin``: the same for a metric where lower is better (perplexity).
- ``larger_drop``: ``axis``, ``base``, ``ablated``, ``compare``, ``more``, ``less``, ``where`` and
  ``margin`` (optional): mean(base) - mean(ablated) is larger for compare=more than for compare=less.

Failed and still-running jobs decide no rule unless the rule names their status.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from ssl_bench.tracking.record import STATUSES, find_records, load_record

REPORT_DIR = "report"                      # <sweep>/report/: where the study's files go
REFERENCE_FILE = "reference.csv"           # experiments/<study>/reference.csv: the published numbers
METRIC_STATUSES = ("finished", "collapsed")   # jobs whose final evaluation exists
INCONCLUSIVE = ("failed", "running")       # says nothing about a claim unless the rule names it
RULE_FIELDS: dict[str, tuple[str, ...]] = {   # kind -> required fields (besides kind)
    "status": ("where",),
    "less": ("a", "b"),
    "less_or_status": ("a", "b", "or_status"),
    "interior_argmax": ("axis",),
    "interior_argmin": ("axis",),            # for lower-is-better metrics (perplexity)
    "larger_drop": ("axis", "base", "ablated", "compare", "more", "less"),
}
SHORT_METRIC = {"knn_acc": "kNN", "linear_acc": "linear", "online_probe_acc": "online probe",
                "z_std_ratio": "z_std ratio", "rankme": "RankMe", "ppl": "ppl", "masked_acc": "masked acc"}
_MISSING = object()


class StudyError(ValueError):
    """A study block, a rule, a set of records or a reference table that cannot be used."""


# --- config values --------------------------------------------------------------------------------
def config_value(config: dict[str, Any], dotted: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; a private sentinel when a key is absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def normalize(value: Any) -> Any:
    """A hashable form under which config values, YAML values and CSV strings compare equal:
    ``True == "true"``, ``1 == 1.0 == "1"``, ``None == "null"``; booleans stay apart from numbers."""
    if value is _MISSING:
        return ("missing",)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in ("true", "false"):
            return ("bool", low == "true")
        if low in ("null", "none", "~"):
            return ("null",)
        try:
            return ("num", float(text))
        except ValueError:
            return ("str", text)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(normalize(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), normalize(v)) for k, v in value.items())))
    return ("str", str(value))


def same(a: Any, b: Any) -> bool:
    """Type-tolerant equality (see :func:`normalize`)."""
    return normalize(a) == normalize(b)


def show(value: Any) -> str:
    """A config value as written in YAML: ``true``, ``0.99``, ``null``."""
    if value is _MISSING:
        return "?"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def short_key(key: str, keys: Sequence[str]) -> str:
    """The last component of a dotted key, unless another key shares it."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def _is_number(value: Any) -> bool:
    return normalize(value)[0] in ("num", "bool")


def _order(values: Iterable[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    """Distinct values (by :func:`normalize`), numbers sorted numerically; otherwise in the order
    of ``preferred`` (the reference table's, i.e. the paper's) first, then alphabetically."""
    distinct: dict[Any, Any] = {}
    for v in list(values) + list(preferred):   # shown as the config writes it, not as the CSV does
        distinct.setdefault(normalize(v), v)
    items = list(distinct.values())
    if all(_is_number(v) for v in items):
        return sorted(items, key=lambda v: normalize(v)[1])
    rank = {normalize(v): i for i, v in enumerate(preferred)}
    return sorted(items, key=lambda v: (rank.get(normalize(v), len(rank)), show(v)))


# --- the study block ------------------------------------------------------------------------------
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
    reference_metric: str | None = None   # which of the reference table's metrics to show (it may list several)
    block: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_block(cls, block: dict[str, Any]) -> Study:
        if not isinstance(block, dict) or not block.get("name"):
            raise StudyError("the study block needs a name")
        rows, columns = block.get("rows") or [], block.get("columns") or []
        rows, columns = ([keys] if isinstance(keys, str) else list(keys) for keys in (rows, columns))
        if not rows or not all(isinstance(k, str) for k in list(rows) + list(columns)):
            raise StudyError(f"study {block['name']}: rows must be a non-empty list of dotted config keys")
        rules = tuple(block.get("rules") or [])
        for i, rule in enumerate(rules):
            _check_rule(i, rule)
        metric = str(block.get("metric") or "knn_acc")
        return cls(name=str(block["name"]), rows=tuple(rows), columns=tuple(columns), metric=metric,
                   metric_label=str(block.get("metric_label") or metric),
                   title=str(block.get("title") or block["name"]), variant=block.get("variant"), rules=rules,
                   reference_metric=block.get("reference_metric"), block=dict(block))

    @property
    def scale(self) -> float:
        """Record value -> display units (accuracies are fractions in records, percent in tables)."""
        return 100.0 if self.metric.endswith("_acc") else 1.0

    @property
    def short(self) -> str:
        return SHORT_METRIC.get(self.metric, self.metric)

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.variant})" if self.variant else self.title


def _check_rule(i: int, rule: Any) -> None:
    if not isinstance(rule, dict) or rule.get("kind") not in RULE_FIELDS:
        kind = rule.get("kind") if isinstance(rule, dict) else rule
        raise StudyError(f"rule {i + 1}: unknown kind {kind!r}; kinds: {', '.join(RULE_FIELDS)}")
    missing = [f for f in RULE_FIELDS[rule["kind"]] if f not in rule]
    if rule["kind"] == "status" and not ("is" in rule or "is_not" in rule):
        missing.append("is or is_not")
    if missing:
        raise StudyError(f"rule {i + 1} ({rule['kind']}): missing {', '.join(missing)}")
    for key in ("where", "a", "b"):
        if key in rule and not isinstance(rule[key], dict):
            raise StudyError(f"rule {i + 1} ({rule['kind']}): {key} must map dotted keys to values")


# --- jobs and cells -------------------------------------------------------------------------------
@dataclass
class Job:
    """One record of the sweep, reduced to what the study needs."""

    run: str
    status: str
    config: dict[str, Any]
    seed: Any = None
    value: float | None = None     # the study metric in display units; None without a final evaluation
    error: str | None = None
    init: float | None = None      # the same metric for the random-init network (evaluated before training)


def _fmt(value: float | None, scale: float = 100.0) -> str:
    if value is None:
        return "-"
    if scale == 100.0 or abs(value) >= 10:
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{value:.2f}"


def status_counts(jobs: Sequence[Job]) -> dict[str, int]:
    """Status -> number of jobs, in the order of the record schema's statuses."""
    known = [s for s in STATUSES if any(j.status == s for j in jobs)]
    other = sorted({j.status for j in jobs} - set(STATUSES))
    return {s: sum(j.status == s for j in jobs) for s in known + other}


def runs_text(jobs: Sequence[Job]) -> str:
    """``finished 2/2``, ``collapsed 1/2, failed 1/2`` or ``not run``."""
    if not jobs:
        return "not run"
    return ", ".join(f"{s} {n}/{len(jobs)}" for s, n in status_counts(jobs).items())


def _values(jobs: Sequence[Job]) -> list[float]:
    return [j.value for j in jobs if j.value is not None]


def _mean_std(jobs: Sequence[Job]) -> tuple[float | None, float | None]:
    vals = _values(jobs)
    if not vals:
        return None, None
    return mean(vals), (stdev(vals) if len(vals) > 1 else None)


@dataclass
class Cell:
    """One (row, column) of the table: our jobs over seeds and the published number."""

    row: tuple[Any, ...]
    column: tuple[Any, ...]
    jobs: list[Job] = field(default_factory=list)
    reference: float | None = None
    reference_metric: str | None = None
    source: str | None = None

    @property
    def n(self) -> int:
        return len(_values(self.jobs))

    @property
    def mean(self) -> float | None:
        return _mean_std(self.jobs)[0]

    @property
    def std(self) -> float | None:
        return _mean_std(self.jobs)[1]

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.jobs)

    @property
    def runs(self) -> str:
        return runs_text(self.jobs)

    def ours(self, scale: float) -> str:
        """``48.1 ± 0.7`` (one seed: ``48.1``; no number: ``-``)."""
        m, s = _mean_std(self.jobs)
        if m is None:
            return "-"
        return _fmt(m, scale) if s is None else f"{_fmt(m, scale)} ± {_fmt(s, scale)}"

    def paper(self, scale: float) -> str:
        """The published number, or ``-``."""
        return _fmt(self.reference, scale)


# --- rules ----------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """A rule checked against our numbers: holds True / False, or None ("n/a": jobs missing or failed)."""

    kind: str
    text: str
    holds: bool | None
    detail: str
    rule: dict[str, Any] = field(default_factory=dict)

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "–"}[self.holds]

    @property
    def outcome(self) -> str:
        return {True: "holds", False: "does not hold", None: "n/a"}[self.holds]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "holds": "n/a" if self.holds is None else self.holds,
                "detail": self.detail, "rule": self.rule}


def flatten(where: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{method: {stop_grad: false}}`` -> ``{"method.stop_grad": False}``; dotted keys stay as they are."""
    out: dict[str, Any] = {}
    for key, value in (where or {}).items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def select(jobs: Iterable[Job], where: dict[str, Any] | None) -> list[Job]:
    """The jobs whose config matches every ``dotted.key: value`` of ``where`` (type-tolerant)."""
    conditions = flatten(where)
    return [j for j in jobs if all(same(config_value(j.config, k), v) for k, v in conditions.items())]


class _Eval:
    """Evaluates the rules of one study on its jobs (seeds averaged)."""

    def __init__(self, study: Study, jobs: Sequence[Job]):
        self.study, self.jobs = study, list(jobs)
        self.keys = list(study.rows) + list(study.columns)

    def label(self, where: dict[str, Any]) -> str:
        where = flatten(where)
        keys = list(self.keys) + [k for k in where if k not in self.keys]
        return ", ".join(f"{short_key(k, keys)}={show(v)}" for k, v in where.items()) or "all jobs"

    def group(self, label: str, jobs: Sequence[Job]) -> str:
        """``stop_grad=false: collapsed 2/2 (kNN 14.9 ± 0.3)``."""
        if not jobs:
            return f"{label}: no jobs"
        m, s = _mean_std(jobs)
        num = "" if m is None else f" ({self.study.short} {_fmt(m, self.study.scale)}" + (
            "" if s is None else f" ± {_fmt(s, self.study.scale)}") + ")"
        return f"{label}: {runs_text(jobs)}{num}"

    def num(self, value: float) -> str:
        return _fmt(value, self.study.scale)

    @staticmethod
    def note(jobs: Sequence[Job]) -> str:
        """`` [collapsed 1/2, failed 1/2]`` unless every job finished."""
        return "" if jobs and all(j.status == "finished" for j in jobs) else f" [{runs_text(jobs)}]"

    # each kind returns (holds, detail)
    def status(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        where = rule["where"]
        jobs = select(self.jobs, where)
        detail = self.group(self.label(where), jobs)
        target = rule.get("is", rule.get("is_not"))
        decided = [j for j in jobs if j.status not in INCONCLUSIVE or j.status == target]
        if not decided:
            return None, detail
        if "is" in rule:
            return all(j.status == rule["is"] for j in decided), detail
        return all(j.status != rule["is_not"] for j in decided), detail

    def less(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        margin = float(rule.get("margin", 0) or 0)
        a, b = select(self.jobs, rule["a"]), select(self.jobs, rule["b"])
        detail = f"{self.group(self.label(rule['a']), a)}; {self.group(self.label(rule['b']), b)}"
        ma, mb = _mean_std(a)[0], _mean_std(b)[0]
        if ma is None or mb is None:
            return None, detail
        holds = ma < mb - margin
        rhs = self.num(mb) + (f" {'-' if margin > 0 else '+'} {abs(margin):g}" if margin else "")
        return holds, f"{detail}; {self.num(ma)} {'<' if holds else '>='} {rhs}"

    def less_or_status(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        status = rule["or_status"]
        a = [j for j in select(self.jobs, rule["a"]) if j.status not in INCONCLUSIVE or j.status == status]
        if a and all(j.status == status for j in a):
            return True, self.group(self.label(rule["a"]), select(self.jobs, rule["a"]))
        return self.less(rule)

    def interior_argmax(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        return self._interior(rule, best=max)

    def interior_argmin(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        return self._interior(rule, best=min)

    def _interior(self, rule: dict[str, Any], best: Any) -> tuple[bool | None, str]:
        """The best mean along ``axis`` (``max`` or ``min`` of the metric) is at an inner value,
        strictly better than both ends."""
        axis = rule["axis"]
        jobs = select(self.jobs, rule.get("where"))
        points = _order(config_value(j.config, axis) for j in jobs
                        if config_value(j.config, axis) is not _MISSING)
        name = short_key(axis, list(dict.fromkeys(self.keys + [axis])))
        scope = f" ({self.label(rule['where'])})" if rule.get("where") else ""
        parts, means = [], []
        for p in points:
            group = [j for j in jobs if same(config_value(j.config, axis), p)]
            m = _mean_std(group)[0]
            means.append(m)
            parts.append(f"{show(p)}: {self.num(m) if m is not None else '-'}{self.note(group)}")
        detail = f"{self.study.short} by {name}{scope}: " + ", ".join(parts) if parts else f"no jobs along {name}{scope}"
        if len(points) < 3:
            return None, f"{detail}; needs at least 3 values of {name}"
        known = [m for m in means if m is not None]
        if len(known) < len(means):
            return None, f"{detail}; a value of {name} has no number"
        arg = points[known.index(best(known))]
        inner, ends = best(known[1:-1]), best(known[0], known[-1])
        holds = inner != ends and best(inner, ends) == inner     # strictly better than both ends
        return holds, f"{detail}; best {name}={show(arg)} ({'interior' if holds else 'at an end'})"

    def larger_drop(self, rule: dict[str, Any]) -> tuple[bool | None, str]:
        axis, compare = rule["axis"], rule["compare"]
        margin = float(rule.get("margin", 0) or 0)
        scope = select(self.jobs, rule.get("where"))
        drops: list[float | None] = []
        parts: list[str] = []
        for side in (rule["more"], rule["less"]):
            jobs = select(scope, {compare: side})
            base = _mean_std(select(jobs, {axis: rule["base"]}))[0]
            ablated = _mean_std(select(jobs, {axis: rule["ablated"]}))[0]
            drop = None if base is None or ablated is None else base - ablated
            drops.append(drop)
            terms = [f"{show(rule[end])} {'-' if m is None else self.num(m)}{self.note(select(jobs, {axis: rule[end]}))}"
                     for end, m in (("base", base), ("ablated", ablated))]
            parts.append(f"{show(side)}: {terms[0]} - {terms[1]} = drop {self.num(drop) if drop is not None else '-'}")
        detail = "; ".join(parts)
        more, less = drops
        if more is None or less is None:
            return None, detail
        holds = more > less + margin
        rhs = self.num(less) + (f" + {margin:g}" if margin else "")
        return holds, f"{detail}; {self.num(more)} {'>' if holds else '<='} {rhs}"


def evaluate_rules(study: Study, jobs: Sequence[Job]) -> list[Verdict]:
    """One verdict per rule of the study, in the study's order."""
    ev = _Eval(study, jobs)
    out = []
    for rule in study.rules:
        holds, detail = getattr(ev, rule["kind"])(rule)
        out.append(Verdict(kind=rule["kind"], text=str(rule.get("text") or rule["kind"]), holds=holds,
                           detail=detail, rule=dict(rule)))
    return out


# --- the published numbers ------------------------------------------------------------------------
def find_reference(study_name: str) -> Path | None:
    """``experiments/<study>/reference.csv``: in the installed package, or at the root of a checkout."""
    pkg = Path(__file__).resolve().parents[1]
    for base in (pkg / "experiments", pkg.parent / "experiments"):
        path = base / study_name / REFERENCE_FILE
        if path.is_file():
            return path
    return None


def load_reference(path: str | Path, study: Study) -> list[dict[str, Any]]:
    """Rows of a reference table: ``{"key": (row values, column values), "value", "metric", "source"}``.
    A key column is named by the dotted key or its last component."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StudyError(f"cannot read reference table {path}: {err.strerror or err}") from err
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]

    def column(key: str) -> str:
        for name in (key, key.rsplit(".", 1)[-1]):
            if name in header:
                return name
        raise StudyError(f"reference table {path}: no column for {key} (columns: {', '.join(header)})")

    if "value" not in header:
        raise StudyError(f"reference table {path}: no 'value' column")
    row_cols, col_cols = [column(k) for k in study.rows], [column(k) for k in study.columns]
    out = []
    for line in reader:
        line = {k.strip(): (v or "").strip() for k, v in line.items() if k is not None}
        try:
            value: float | None = float(line["value"])
        except ValueError:
            value = None
        out.append({"row": tuple(line[c] for c in row_cols), "column": tuple(line[c] for c in col_cols),
                    "value": value, "metric": line.get("metric") or None, "source": line.get("source") or None})
    return out


# --- the report -----------------------------------------------------------------------------------
@dataclass
class StudyReport:
    """The study's table (cells in row-major order), its verdicts and where it came from."""

    study: Study
    rows: list[tuple[Any, ...]]
    columns: list[tuple[Any, ...]]
    cells: dict[tuple[Any, Any], Cell]
    jobs: list[Job]
    verdicts: list[Verdict]
    source: str = ""
    reference_path: Path | None = None
    ignored: int = 0                       # records without this study's block

    def cell(self, row: tuple[Any, ...], column: tuple[Any, ...]) -> Cell:
        return self.cells[(_nkey(row), _nkey(column))]

    @property
    def random_init(self) -> float | None:
        """Mean of the study metric over the jobs' random-init evaluations (the baseline to beat)."""
        values = [j.init for j in self.jobs if j.init is not None]
        return mean(values) if values else None

    @property
    def reference_metrics(self) -> list[str]:
        return sorted({c.reference_metric for c in self.cells.values() if c.reference_metric})

    @property
    def sources(self) -> list[str]:
        return sorted({c.source for c in self.cells.values() if c.source})

    def row_label(self, row: tuple[Any, ...]) -> str:
        if len(row) == 1:
            return show(row[0])
        return ", ".join(f"{short_key(k, self.study.rows)}={show(v)}" for k, v in zip(self.study.rows, row))

    def column_label(self, column: tuple[Any, ...]) -> str:
        return " / ".join(show(v) for v in column)

    @property
    def problems(self) -> list[Job]:
        """Jobs that did not end with a result: failed, diverged, still running."""
        return [j for j in self.jobs if j.status not in METRIC_STATUSES]


def _nkey(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(normalize(v) for v in values)


INTERPRETATION = ("title", "metric_label", "reference_metric", "rules")   # keys that do not change a job


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
    block = dict(blocks[0])
    current = current_block(names[0]) if rules == "current" and names else None
    if current is not None:
        block.update({k: current[k] for k in INTERPRETATION if k in current})
    return Study.from_block(block)


def _job(record: dict[str, Any], run: str, study: Study) -> Job:
    value = (record.get("final") or {}).get(study.metric)
    ok = record.get("status") in METRIC_STATUSES and isinstance(value, (int, float)) and math.isfinite(value)
    return Job(run=run, status=str(record.get("status")), config=record.get("config") or {}, seed=record.get("seed"),
               value=float(value) * study.scale if ok else None,
               error=(record.get("error") or {}).get("message"), init=_init_value(record, study))


def _init_value(record: dict[str, Any], study: Study) -> float | None:
    value = (record.get("init") or {}).get(study.metric)
    return float(value) * study.scale if isinstance(value, (int, float)) and math.isfinite(value) else None


def build_report(records: Sequence[tuple[dict[str, Any], str]], reference: str | Path | None = None,
                 source: str = "", rules: str = "recorded") -> StudyReport:
    """The study report of ``(record, run name)`` pairs. ``reference``: a reference CSV; None looks
    up ``experiments/<study>/reference.csv`` (a missing one leaves the paper column empty)."""
    study = study_of([r for r, _ in records], rules)
    if study is None:
        raise StudyError("no record has a study block")
    mine = [(r, n) for r, n in records if ((r.get("config") or {}).get("study") or {}).get("name") == study.name]
    jobs = [_job(r, n, study) for r, n in mine]
    ref_path = Path(reference) if reference is not None else find_reference(study.name)
    ref_rows = load_reference(ref_path, study) if ref_path is not None else []
    if study.reference_metric:
        ref_rows = [r for r in ref_rows if r["metric"] == study.reference_metric]

    def values(job: Job, keys: Sequence[str]) -> tuple[Any, ...]:
        return tuple(config_value(job.config, k) for k in keys)

    rows = _order_keys([values(j, study.rows) for j in jobs], [r["row"] for r in ref_rows])
    columns = _order_keys([values(j, study.columns) for j in jobs], [r["column"] for r in ref_rows])
    cells: dict[tuple[Any, Any], Cell] = {}
    for row in rows:
        for col in columns:
            cells[(_nkey(row), _nkey(col))] = Cell(row=row, column=col)
    for job in jobs:
        cells[(_nkey(values(job, study.rows)), _nkey(values(job, study.columns)))].jobs.append(job)
    for ref in ref_rows:
        cell = cells.get((_nkey(ref["row"]), _nkey(ref["column"])))
        if cell is not None:
            cell.reference, cell.reference_metric, cell.source = ref["value"], ref["metric"], ref["source"]
    return StudyReport(study=study, rows=rows, columns=columns, cells=cells, jobs=jobs,
                       verdicts=evaluate_rules(study, jobs), source=source, reference_path=ref_path,
                       ignored=len(records) - len(mine))


def _order_keys(found: list[tuple[Any, ...]], preferred: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Distinct key tuples, ordered position by position (see :func:`_order`)."""
    all_keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for key in found + preferred:
        all_keys.setdefault(_nkey(key), key)
    if not all_keys:
        return [()]
    width = len(next(iter(all_keys.values())))
    ranks = []
    for i in range(width):
        order = _order([k[i] for k in found], [k[i] for k in preferred])
        ranks.append({normalize(v): r for r, v in enumerate(order)})
    return sorted(all_keys.values(), key=lambda k: tuple(ranks[i][normalize(v)] for i, v in enumerate(k)))


def load_study(root: str | Path, reference: str | Path | None = None) -> StudyReport | None:
    """The study report of a sweep folder; None when its records carry no study block."""
    root = Path(root)
    paths = find_records(root)
    if not paths:
        raise FileNotFoundError(f"no record.json under {root}: is it a run or sweep folder of ssl-bench?")
    records = [(load_record(p), run_name(p, root)) for p in paths]
    if study_of([r for r, _ in records]) is None:
        return None
    return build_report(records, reference=reference, source=str(root))


def run_name(path: Path, root: Path) -> str:
    """A run's name in a report: its folder relative to the sweep folder."""
    return str(path.parent.relative_to(root)) if path.parent != root else path.parent.name


# --- renderers ------------------------------------------------------------------------------------
def _header(report: StudyReport) -> tuple[list[str], list[str]]:
    """(group labels, column headers) of the wide table; one group per column value."""
    study = report.study
    keys = [short_key(k, study.rows) for k in study.rows]
    sub = [study.metric_label, "runs", "paper"]
    groups = [report.column_label(c) for c in report.columns] if study.columns else [""]
    return groups, keys + sub * len(groups)


def table_rows(report: StudyReport) -> list[list[str]]:
    """The wide table as strings: row key values, then (ours, runs, paper) per column value."""
    out = []
    for row in report.rows:
        line = [show(v) for v in row]
        for col in report.columns:
            cell = report.cell(row, col)
            line += [cell.ours(report.study.scale), cell.runs, cell.paper(report.study.scale)]
        out.append(line)
    return out


def verdict_lines(report: StudyReport) -> list[str]:
    """``✓ claim: numbers`` per rule."""
    return [f"{v.mark} {v.text}: {v.outcome}. {v.detail}" for v in report.verdicts]


def _baseline_line(report: StudyReport) -> str:
    init = report.random_init
    return "" if init is None else (f" Random-init network (each job's evaluation before training): "
                                    f"{report.study.short} {_fmt(init, report.study.scale)}.")


def _sources_line(report: StudyReport) -> str:
    if report.reference_path is None:
        return "Published numbers: no reference table."
    metrics = report.reference_metrics
    what = f" ({'; '.join(metrics)})" if metrics else ""
    return f"Published numbers{what}: " + ("; ".join(report.sources) or report.reference_path.name)


def to_markdown(report: StudyReport) -> str:
    groups, head = _header(report)
    study = report.study
    if study.columns:
        head = head[:len(study.rows)] + [f"{g}: {h}" for g in groups for h in head[len(study.rows):len(study.rows) + 3]]
    lines = [f"## {study.heading}", "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in table_rows(report)]
    lines += ["", f"Ours: mean ± std over seeds.{_baseline_line(report)} {_sources_line(report)}"]
    if report.verdicts:
        lines += ["", "### Verdicts", ""] + [f"- {line}" for line in verdict_lines(report)]
    if report.problems:
        lines += ["", "### Jobs without a result", ""]
        lines += [f"- `{j.run}`: {j.status}" + (f": {j.error}" if j.error else "") for j in report.problems]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("mean", "std", "n", "jobs", "runs", "reference", "reference_metric", "source")


def to_csv(report: StudyReport) -> str:
    """One line per cell that has jobs or a published number (tidy; means in display units)."""
    study = report.study
    statuses = [s for s in STATUSES if s != "running"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*study.rows, *study.columns, "metric", *CSV_FIELDS, *statuses])
    for row in report.rows:
        for col in report.columns:
            cell = report.cell(row, col)
            if not cell.jobs and cell.reference is None:
                continue
            m, s = cell.mean, cell.std
            writer.writerow([*map(show, row), *map(show, col), study.metric,
                             "" if m is None else round(m, 4), "" if s is None else round(s, 4), cell.n,
                             len(cell.jobs), cell.runs, "" if cell.reference is None else cell.reference,
                             cell.reference_metric or "", cell.source or "",
                             *[cell.counts.get(st, 0) for st in statuses]])
    return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("–", "--")


def to_latex(report: StudyReport) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), ready for ``\\input``."""
    study = report.study
    groups, head = _header(report)
    nkeys, width = len(study.rows), len(head)
    lines = [f"% {study.heading}: ours = mean $\\pm$ std over seeds",
             f"% {_sources_line(report)}",
             r"\begin{tabular}{" + "l" * nkeys + "rlr" * len(groups) + "}", r"\toprule"]
    if study.columns:
        lines.append(" & ".join([""] * nkeys + [rf"\multicolumn{{3}}{{c}}{{{tex_escape(g)}}}" for g in groups])
                     + r" \\")
        lines.append(" ".join(rf"\cmidrule(lr){{{nkeys + 1 + 3 * i}-{nkeys + 3 + 3 * i}}}" for i in range(len(groups))))
    lines.append(" & ".join(tex_escape(h) for h in head) + r" \\")
    lines.append(r"\midrule")
    for r in table_rows(report):
        assert len(r) == width
        lines.append(" & ".join(tex_escape(c) for c in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def verdicts_json(report: StudyReport) -> dict[str, Any]:
    study = report.study
    vs = report.verdicts
    return {"study": study.name, "title": study.title, "variant": study.variant, "metric": study.metric,
            "source": report.source, "reference": None if report.reference_path is None else str(report.reference_path),
            "random_init": report.random_init, "holds": sum(v.holds is True for v in vs), "does_not_hold": sum(v.holds is False for v in vs),
            "n/a": sum(v.holds is None for v in vs), "verdicts": [v.as_dict() for v in vs]}


def to_rich(report: StudyReport) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from ssl_bench.ui import STATUS_STYLE

    study = report.study
    groups, head = _header(report)
    nkeys = len(study.rows)
    table = Table(title=escape(f"{study.heading}: {report.source}" if report.source else study.heading))
    for i, h in enumerate(head):
        group = groups[(i - nkeys) // 3] if i >= nkeys and study.columns else ""
        left = i < nkeys or (i - nkeys) % 3 == 1      # key values and runs left, numbers right
        table.add_column(escape(f"{group}\n{h}" if group else h), justify="left" if left else "right")
    for row, cells in zip(report.rows, table_rows(report)):
        styled = [escape(c) for c in cells]
        for j, col in enumerate(report.columns):
            counts = report.cell(row, col).counts
            worst = next((s for s in ("failed", "diverged", "collapsed", "running") if counts.get(s)), None)
            if worst:
                styled[nkeys + 3 * j + 1] = f"[{STATUS_STYLE[worst]}]{styled[nkeys + 3 * j + 1]}[/]"
        table.add_row(*styled)
    table.caption = escape(f"ours: mean ± std over seeds.{_baseline_line(report)} {_sources_line(report)}")
    return table


def write_report(report: StudyReport, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write table.md, table.csv, table.tex, verdicts.json and ``<study>.png`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "table.md", "csv": out / "table.csv", "tex": out / "table.tex",
             "verdicts": out / "verdicts.json"}
    files["md"].write_text(to_markdown(report), encoding="utf-8")
    files["csv"].write_text(to_csv(report), encoding="utf-8")
    files["tex"].write_text(to_latex(report), encoding="utf-8")
    files["verdicts"].write_text(json.dumps(verdicts_json(report), indent=2, default=str) + "\n", encoding="utf-8")
    if plot:
        from ssl_bench.report.plot import plot_study

        png = plot_study(report, out / f"{report.study.name}.png")
        if png is not None:
            files["png"] = png
    return files
