"""Report models -> markdown, CSV (tidy), LaTeX (booktabs), JSON and the console (rich); and the
report folder (``<sweep>/report/``) with all of them and the figure.

Both report kinds share one wide layout: the row keys, then per column value a group of cells
(``mean ± CI``, ``n``, ``runs``, and ``paper`` for a study or ``vs best`` for a sweep).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ssl_bench.report.build import StudyReport, SweepReport, Table, metric_label
from ssl_bench.report.cells import Cell, is_accuracy
from ssl_bench.report.render_json import sweep_json, verdicts_json
from ssl_bench.report.values import fmt, p_is, short_key, show
from ssl_bench.tracking.record import STATUSES


def compares(report: Table) -> bool:
    """A study with ``compare: true``: each cell lists what it is significantly better than."""
    return isinstance(report, StudyReport) and report.study is not None and report.study.compare


def sub_headers(report: Table) -> list[str]:
    heads = [metric_label(report), "n", "runs", "paper" if isinstance(report, StudyReport) else "vs best"]
    return heads + ["better than"] if compares(report) else heads


SUB_ALIGN = {"paper": "r", "vs best": "l", "better than": "l"}


def short_label(report: Table, cell: Cell) -> str:
    """The row's value alone when the table has one axis (``simclr``), else the full cell label."""
    return report.row_label(cell.row) if not report.column_keys else report.cell_label(cell.row, cell.column)


def better_than(report: StudyReport, cell: Cell) -> str:
    """The cells it beats, ``-`` for none, ``not compared`` when too few seeds decide for any test."""
    if id(cell) not in report.better:
        return "not compared" if cell.jobs else "-"
    return ", ".join(short_label(report, d) for d in report.better[id(cell)]) or "-"


def header(report: Table) -> tuple[list[str], list[str]]:
    """(group labels, column headers) of the wide table; one group per column value."""
    keys = [short_key(k, report.row_keys) for k in report.row_keys]
    groups = [report.column_label(c) for c in report.columns] if report.column_keys else [""]
    return groups, keys + sub_headers(report) * len(groups)


def vs_best(report: SweepReport, cell: Cell) -> str:
    if len([c for c in report.cells.values() if c.mean is not None]) < 2:
        return "-"
    if cell is report.best:
        return "best"
    p = report.vs_best.get(id(cell))
    if p is None:
        return "-"
    return f"{'worse' if p < report.alpha else 'n.s.'} ({p_is(p)})"


def cell_fields(report: Table, cell: Cell) -> list[str]:
    last = fmt(cell.reference, report.scale) if isinstance(report, StudyReport) else vs_best(report, cell)
    n = str(cell.n) if cell.jobs else "-"
    fields = [cell.ours(), n, cell.runs + (" (same runs)" if cell.same_as else ""), last]
    return fields + [better_than(report, cell)] if compares(report) else fields  # type: ignore[arg-type]


def table_rows(report: Table) -> list[list[str]]:
    """The wide table as strings: row key values, then the cell fields per column value."""
    out = []
    for row in report.rows:
        cells = [report.cell(row, col) for col in report.columns]
        if isinstance(report, SweepReport) and not any(c.jobs for c in cells):
            continue
        out.append([show(v) for v in row] + [f for c in cells for f in cell_fields(report, c)])
    return out


# --- captions and verdicts ------------------------------------------------------------------------
def notes(report: Table) -> list[str]:
    """The caption: what the numbers are, the binomial term, baselines, pooled keys, repeats."""
    out = ["Ours: mean ± 95% CI (Student t) over seeds; n: seeds with a number."]
    if is_accuracy(report.metric):
        sizes = report.n_eval
        if sizes:
            out.append(
                "CIs and tests include the evaluation split's binomial error p(1-p)/N_eval (N_eval = "
                f"{', '.join(f'{n:,}' for n in sizes)} images, the same split for every job)."
            )
        else:
            out.append(
                "No binomial term: the evaluation split's size is unknown (no final.n_eval in the records, "
                "not the shapes data); the CIs cover the seed-to-seed spread only."
            )
    init = report.random_init
    if init is not None:
        out.append(
            f"Random-init network (each job's evaluation before training): {report.short} {fmt(init, report.scale)}."
        )
    if report.pooled:
        out.append(f"Cells pool jobs that differ in {', '.join(report.pooled)} (not a table key).")
    repeats = [f"{report.cell_label(c.row, c.column)} = {c.same_as}" for c in report.cells.values() if c.same_as]
    if repeats:
        out.append(
            f"Same runs (identical results of the same seeds; counted once in every verdict): {'; '.join(repeats)}."
        )
    if compares(report):
        assert isinstance(report, StudyReport)
        out.append(
            "Better than: the cells it is significantly above (one-sided t-tests, paired where cells share "
            f"seeds, else Welch; Holm over all {report.compared} ordered pairs tested; alpha {report.alpha:g})."
        )
    if isinstance(report, StudyReport):
        out.append(sources_line(report))
    return out


def sources_line(report: StudyReport) -> str:
    if report.reference_path is None:
        return "Published numbers: no reference table."
    metrics = report.reference_metrics
    what = f" ({'; '.join(metrics)})" if metrics else ""
    return f"Published numbers{what}: " + ("; ".join(report.sources) or report.reference_path.name)


def verdict_lines(report: StudyReport) -> list[str]:
    """``✓ claim: outcome. numbers; test`` per rule; per-cell sub-verdicts indented under it."""
    out = []
    for v in report.verdicts:
        out.append(v.line())
        out += [f"    {line}" for line in v.sub_lines()]
    return out


def best_line(report: SweepReport) -> str:
    if report.best is None:
        return "Best: none (no job has a number)."
    best = report.best
    sig, not_sig = report.better_than()
    if not sig and not not_sig:
        return f"One configuration with a number ({report.cell_label(best.row, best.column)}): nothing to compare."
    text = (
        f"Best: {report.cell_label(best.row, best.column)} ({best.ours()}, n={best.n}); "
        f"significantly better than {len(sig)} of {len(sig) + len(not_sig)}"
    )
    if sig:
        text += ": " + "; ".join(report.cell_label(c.row, c.column) for c in sig)
    untested = [c for c in report.ordered_cells if c is not best and c.mean is not None and id(c) not in report.vs_best]
    if untested:
        text += f" ({len(untested)} not testable: n < 2)"
    return text + (
        f" (one-sided t-tests, paired where cells share seeds, else Welch; Holm over all {_pairs(report)} ordered"
        f" pairs of cells, which covers picking the best from the data; alpha {report.alpha:g})."
    )


def _pairs(report: SweepReport) -> int:
    k = sum(c.mean is not None for c in report.cells.values())
    return k * (k - 1)


def _title(report: Table) -> str:
    if isinstance(report, StudyReport) and report.study is not None:
        return report.study.heading
    return f"Sweep {report.source}: {report.short}" if report.source else f"Sweep: {report.short}"


def _problem_lines(report: Table) -> list[str]:
    out = [f"`{j.run}`: {j.status}" + (f": {j.error}" if j.error else "") for j in report.problems]
    return out


def _unreadable_lines(report: Table) -> list[str]:
    return [f"`{u.path}`: {u.reason}" for u in report.unreadable]


# --- markdown -------------------------------------------------------------------------------------
def to_markdown(report: Table) -> str:
    groups, head = header(report)
    nkeys, nsub = len(report.row_keys), len(sub_headers(report))
    if report.column_keys:
        head = head[:nkeys] + [f"{g}: {h}" for g in groups for h in head[nkeys : nkeys + nsub]]
    lines = [f"## {_title(report)}", "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in table_rows(report)]
    lines += ["", " ".join(notes(report))]
    if isinstance(report, SweepReport):
        lines += ["", best_line(report)]
    if isinstance(report, StudyReport) and report.verdicts:
        lines += ["", "### Verdicts", ""]
        for v in report.verdicts:
            lines.append(f"- {v.line()}")
            lines += [f"    - {line}" for line in v.sub_lines()]
    for title, items in (
        ("Jobs without a result", _problem_lines(report)),
        ("Unreadable records (left out)", _unreadable_lines(report)),
    ):
        if items:
            lines += ["", f"### {title}", ""] + [f"- {x}" for x in items]
    return "\n".join(lines) + "\n"


# --- tidy rows: CSV and W&B -----------------------------------------------------------------------
def tidy(report: Table) -> tuple[list[str], list[list[Any]]]:
    """One line per cell with jobs (or a published number): key values as text, numbers in display units."""
    statuses = [s for s in STATUSES if s != "running"]
    study = isinstance(report, StudyReport)
    extra = ["reference", "reference_metric", "source"] if study else ["vs_best_p", "best"]
    extra += ["better_than"] if compares(report) else []
    columns = [
        *report.row_keys,
        *report.column_keys,
        "metric",
        "mean",
        "std",
        "se",
        "ci_low",
        "ci_high",
        "n",
        "n_eval",
        "jobs",
        "runs",
        *extra,
        *statuses,
    ]
    data = []
    for row in report.rows:
        for col in report.columns:
            cell = report.cell(row, col)
            if not cell.jobs and (not study or cell.reference is None):
                continue
            s = cell.summary
            ci = s.ci()
            evals = sorted({j.n_eval for j in cell.jobs if j.n_eval and j.value is not None})
            if study:
                tail = [cell.reference, cell.reference_metric or "", cell.source or ""]
                tail += [better_than(report, cell)] if compares(report) else []  # type: ignore[arg-type]
            else:
                p = report.vs_best.get(id(cell))
                tail = ["" if p is None else round(p, 6), cell is report.best]
            data.append(
                [
                    *map(show, row),
                    *map(show, col),
                    report.metric,
                    _round(s.mean),
                    _round(s.std),
                    _round(s.se),
                    _round(ci[0] if ci else None),
                    _round(ci[1] if ci else None),
                    s.n,
                    evals[0] if evals else "",
                    len(cell.jobs),
                    cell.runs,
                    *tail,
                    *[cell.counts.get(st, 0) for st in statuses],
                ]
            )
    return columns, data


def _round(x: float | None) -> Any:
    return "" if x is None else round(x, 4)


def to_csv(report: Table) -> str:
    columns, data = tidy(report)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in line] for line in data)
    return buf.getvalue()


# --- LaTeX ----------------------------------------------------------------------------------------
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("–", "--")


def to_latex(report: Table) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), ready for ``\\input``."""
    groups, head = header(report)
    subs = sub_headers(report)
    nkeys, nsub = len(report.row_keys), len(subs)
    align = "".join(SUB_ALIGN.get(h, "l" if h == "runs" else "r") for h in subs)
    lines = [f"% {_title(report)}"] + [f"% {tex_escape(n)}" for n in notes(report)]
    lines += [r"\begin{tabular}{" + "l" * nkeys + align * len(groups) + "}", r"\toprule"]
    if report.column_keys:
        lines.append(
            " & ".join([""] * nkeys + [rf"\multicolumn{{{nsub}}}{{c}}{{{tex_escape(g)}}}" for g in groups]) + r" \\"
        )
        lines.append(
            " ".join(rf"\cmidrule(lr){{{nkeys + 1 + nsub * i}-{nkeys + nsub * (i + 1)}}}" for i in range(len(groups)))
        )
    lines.append(" & ".join(tex_escape(h) for h in head) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(tex_escape(c) for c in r) + r" \\" for r in table_rows(report)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# --- console --------------------------------------------------------------------------------------
def to_rich(report: Table) -> Any:
    from rich.markup import escape
    from rich.table import Table as RichTable

    from ssl_bench.ui import STATUS_STYLE

    groups, head = header(report)
    nkeys, nsub = len(report.row_keys), len(sub_headers(report))
    title = _title(report)
    if isinstance(report, StudyReport) and report.source:
        title = f"{title}: {report.source}"
    table = RichTable(title=escape(title))
    for i, h in enumerate(head):
        group = groups[(i - nkeys) // nsub] if i >= nkeys and report.column_keys else ""
        left = i < nkeys or (i - nkeys) % nsub >= 2  # key values, runs and the text fields left
        table.add_column(escape(f"{group}\n{h}" if group else h), justify="left" if left else "right")
    rows = [
        r
        for r in report.rows
        if not isinstance(report, SweepReport) or any(report.cell(r, c).jobs for c in report.columns)
    ]
    for row, cells in zip(rows, table_rows(report)):
        styled = [escape(c) for c in cells]
        for j, col in enumerate(report.columns):
            cell = report.cell(row, col)
            worst = next(
                (s for s in ("failed", "interrupted", "diverged", "collapsed", "running") if cell.counts.get(s)), None
            )
            if worst:
                styled[nkeys + nsub * j + 2] = f"[{STATUS_STYLE[worst]}]{styled[nkeys + nsub * j + 2]}[/]"
            if isinstance(report, SweepReport) and cell is report.best:
                styled[nkeys + nsub * j] = f"[bold]{styled[nkeys + nsub * j]}[/]"
        table.add_row(*styled)
    table.caption = escape(" ".join(notes(report)))
    return table


def print_console(report: Table) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    console.width = max(console.width, 120)
    console.print(to_rich(report))
    if isinstance(report, SweepReport):
        console.print(escape(best_line(report)), soft_wrap=True)
    else:
        style = {"holds": "green", "does not hold": "red", "inconclusive": "yellow", "n/a": "dim"}
        for v in report.verdicts:
            console.print(f"[{style[v.outcome]}]{escape(v.line())}[/]", soft_wrap=True)
            for c, line in zip(v.cells, v.sub_lines()):
                console.print(f"    [{style[c.outcome]}]{escape(line)}[/]", soft_wrap=True)
    for line in _problem_lines(report):
        print(f"  {line.replace('`', '')}")
    for line in _unreadable_lines(report):
        print(f"  unreadable record {line.replace('`', '')}")


# --- the report folder ----------------------------------------------------------------------------
def write_report(report: Table, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """table.md, table.csv, table.tex, verdicts.json (study) or summary.json (sweep) and a PNG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "table.md", "csv": out / "table.csv", "tex": out / "table.tex"}
    files["md"].write_text(to_markdown(report), encoding="utf-8")
    files["csv"].write_text(to_csv(report), encoding="utf-8")
    files["tex"].write_text(to_latex(report), encoding="utf-8")
    if isinstance(report, StudyReport):
        files["verdicts"] = out / "verdicts.json"
        payload = verdicts_json(report)
    else:
        files["summary"] = out / "summary.json"
        payload = sweep_json(report)
    files.get("verdicts", files.get("summary")).write_text(
        json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if plot:
        from ssl_bench.report.plot import plot_report

        name = report.study.name if isinstance(report, StudyReport) and report.study else "sweep"
        png = plot_report(report, out / f"{name}.png")
        if png is not None:
            files["png"] = png
    return files
