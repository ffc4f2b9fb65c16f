"""The published numbers of a study: ``experiments/<study>/reference.csv``.

One line per published cell: a column per row / column key of the study (named by the dotted key or
its last component), ``value``, and optionally ``metric`` (what the paper measured) and ``source``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_bench.report.cells import ReportError

if TYPE_CHECKING:
    from ssl_bench.report.block import Study

REFERENCE_FILE = "reference.csv"


def find_reference(study_name: str) -> Path | None:
    """``experiments/<study>/reference.csv``: in the installed package, or at the root of a checkout."""
    pkg = Path(__file__).resolve().parents[1]
    for base in (pkg / "experiments", pkg.parent / "experiments"):
        path = base / study_name / REFERENCE_FILE
        if path.is_file():
            return path
    return None


def load_reference(path: str | Path, study: Study) -> list[dict[str, Any]]:
    """Rows of a reference table: ``{"row": values, "column": values, "value", "metric", "source"}``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ReportError(f"cannot read reference table {path}: {err.strerror or err}") from err
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]

    def column(key: str) -> str:
        for name in (key, key.rsplit(".", 1)[-1]):
            if name in header:
                return name
        raise ReportError(f"reference table {path}: no column for {key} (columns: {', '.join(header)})")

    if "value" not in header:
        raise ReportError(f"reference table {path}: no 'value' column")
    row_cols, col_cols = [column(k) for k in study.rows], [column(k) for k in study.columns]
    out = []
    for line in reader:
        line = {k.strip(): (v or "").strip() for k, v in line.items() if k is not None}
        try:
            value: float | None = float(line["value"])
        except ValueError:
            value = None
        out.append(
            {
                "row": tuple(line[c] for c in row_cols),
                "column": tuple(line[c] for c in col_cols),
                "value": value,
                "metric": line.get("metric") or None,
                "source": line.get("source") or None,
            }
        )
    return out
