"""Sweep folder -> comparison table. Reads run records only (never W&B), so it works offline.

Every record appears, whatever its status: failed, diverged and collapsed runs are shown as
such, never dropped. A "random init" row reports the untrained backbone's evaluation that each
run made before training (the mean over runs when they differ).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from statistics import mean
from typing import Any

from ssl_bench.tracking.record import find_records, load_record

COLUMNS = (
    "run",
    "method",
    "status",
    "knn_acc",
    "linear_acc",
    "online_probe_acc",
    "z_std_ratio",
    "rankme",
    "epochs",
    "train_s",
    "img_per_s",
)
MLM_COLUMNS = ("ppl", "unigram_ppl", "masked_acc", "tokens_per_s")  # shown when a masked-LM run is present


def columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    return COLUMNS + MLM_COLUMNS if any(r.get("ppl") is not None for r in rows) else COLUMNS


def _row(rec: dict[str, Any], path: Path, root: Path) -> dict[str, Any]:
    final, best, timings = rec.get("final", {}), rec.get("best", {}), rec.get("timings", {})
    epochs = rec.get("epochs", [])
    return {
        "run": str(path.parent.relative_to(root)) if path.parent != root else path.parent.name,
        "method": rec.get("method"),
        "status": rec.get("status"),
        "knn_acc": final.get("knn_acc"),
        "linear_acc": final.get("linear_acc"),
        "online_probe_acc": epochs[-1].get("val/online_probe_acc") if epochs else best.get("val/online_probe_acc"),
        "z_std_ratio": final.get("z_std_ratio"),
        "rankme": final.get("rankme"),
        "epochs": len(epochs),
        "train_s": timings.get("train_s"),
        "img_per_s": timings.get("img_per_s"),
        **{k: final.get(k) for k in MLM_COLUMNS},
        "overrides": " ".join(rec.get("overrides", [])),
        "error": (rec.get("error") or {}).get("message"),
    }


def collect(root: str | Path, records: list[tuple[dict[str, Any], Path]] | None = None) -> list[dict[str, Any]]:
    """One row per run record under ``root``, then a ``random init`` row (if any run has one).
    ``records``: the (record, path) pairs under ``root`` when the caller has read them already."""
    root = Path(root)
    if records is None:
        records = [(load_record(p), p) for p in find_records(root)]  # every record readable (see cells.read_records)
    if not records:
        raise FileNotFoundError(f"no record.json under {root}: is it a run or sweep folder of ssl-bench?")
    records = [(r, p) for r, p in records if r.get("job_type", "pretrain") != "eval"]  # ssl-bench-eval records
    rows = [_row(rec, p, root) for rec, p in records]
    inits = [rec["init"] for rec, _ in records if (rec.get("init") or {}).get("knn_acc") is not None]  # image runs
    if inits:
        rows.append(
            {
                "run": "random init",
                "method": "-",
                "status": "-",
                **{k: _mean([i.get(k) for i in inits]) for k in ("knn_acc", "linear_acc", "rankme")},
                "online_probe_acc": None,
                "z_std_ratio": None,  # heads differ per method: no common value
                "epochs": 0,
                "train_s": None,
                "img_per_s": None,
                "overrides": "",
                "error": None,
                **{k: None for k in MLM_COLUMNS},
            }
        )
    return rows


def _mean(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return mean(numbers) if numbers else None


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_acc"):
        return f"{100 * value:.1f}"
    if isinstance(value, float):
        if key == "z_std_ratio":
            return f"{value:.2f}"
        return f"{value:.1f}" if key.endswith("ppl") or value < 100 else f"{value:.0f}"
    return str(value)


HEADERS = {
    "knn_acc": "kNN %",
    "linear_acc": "linear %",
    "online_probe_acc": "online probe %",
    "z_std_ratio": "z_std x sqrt(d)",
    "rankme": "RankMe",
    "train_s": "train s",
    "img_per_s": "img/s",
    "ppl": "ppl",
    "unigram_ppl": "unigram ppl",
    "masked_acc": "masked acc %",
    "tokens_per_s": "tokens/s",
}


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    head = [HEADERS.get(c, c) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_fmt(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns(rows)) + ["overrides", "error"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_rich(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    from ssl_bench.ui import STATUS_STYLE

    table = Table(title=title)
    cols = columns(rows)
    for c in cols:
        table.add_column(HEADERS.get(c, c), justify="left" if c in ("run", "method", "status") else "right")
    for r in rows:
        cells = [_fmt(c, r[c]) for c in cols]
        style = STATUS_STYLE.get(str(r["status"]))
        if style:
            cells[2] = f"[{style}]{cells[2]}[/]"
        table.add_row(*cells, style="dim" if r["run"] == "random init" else None)
    return table
