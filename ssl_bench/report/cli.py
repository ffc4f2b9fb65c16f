"""``ssl-bench-report PATH``: the report of a run or sweep folder.

- A sweep whose jobs carry a ``study`` block (a paper's ablation): the study's table, our numbers
  (mean ± 95% CI over seeds) beside the published ones, and a verdict per rule (holds / does not
  hold / inconclusive, by a stated test).
- Any other sweep: the keys that vary across its jobs as columns, seeds aggregated per cell, sorted
  by the metric, the best cell marked with what it is significantly better than
  (``--rows/--columns/--metric`` choose the layout; on a study sweep they switch to this layout).
- A single run: its one-line table (``--runs``: one line per run for any folder).

Reports are written to ``PATH/report/`` (table.md, table.csv, table.tex, verdicts.json or
summary.json, a PNG) and, when the jobs logged to W&B, logged as a ``report`` run in their group.
Unreadable records are listed by path and left out. PATH may also be ``wandb://ENTITY/PROJECT/GROUP``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ssl_bench.report.block import StudyError, study_of
from ssl_bench.report.build import REPORT_DIR, Table, build_report, build_sweep, pretraining
from ssl_bench.report.cells import Unreadable, read_records, run_name
from ssl_bench.report.table import collect, to_csv, to_markdown, to_rich

PROG = "ssl-bench-report"


def _error(message: str, code: int = 2) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _keys(text: str | None) -> list[str] | None:
    return None if text is None else [k.strip() for k in text.split(",") if k.strip()]


def parser() -> argparse.ArgumentParser:
    from ssl_bench.report.wandb_report import SCHEME

    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "path",
        help=f"a run folder or a sweep folder (searched recursively for record.json), or {SCHEME}ENTITY/PROJECT/GROUP",
    )
    p.add_argument("--format", choices=("console", "md", "csv", "tex"), default="console", help="what to print")
    p.add_argument(
        "--out",
        help=f"the report folder (default PATH/{REPORT_DIR}); with --runs or a single run: "
        "also write the table to this file (csv with --format csv, else md)",
    )
    p.add_argument(
        "--reference", help="study: CSV of the published numbers (default experiments/<study>/reference.csv)"
    )
    p.add_argument(
        "--rules",
        choices=("current", "recorded"),
        default="current",
        help="study: judge by the rules of conf/study/<study>.yaml as it is now (default; an "
        "edited rule applies without rerunning) or by those saved in the records",
    )
    p.add_argument("--rows", help="sweep: comma-separated keys of the table's rows (default: every key that varies)")
    p.add_argument("--columns", help="sweep: comma-separated keys shown side by side (default: none)")
    p.add_argument(
        "--metric",
        help="sweep: the final metric to aggregate and sort by (default knn_acc; ppl for "
        "masked-LM runs, lower is better)",
    )
    p.add_argument("--runs", action="store_true", help="one line per run instead of the aggregated report")
    p.add_argument(
        "--wandb",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log a report run to W&B (default: when the jobs logged to W&B)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from ssl_bench.report.wandb_report import SCHEME

    args = parser().parse_args(argv)
    layout = any(x is not None for x in (args.rows, args.columns, args.metric))
    bad: list[Unreadable] = []
    if args.path.startswith(SCHEME):
        from ssl_bench.report.wandb_report import fetch_group

        try:
            records = fetch_group(args.path)
        except StudyError as err:
            return _error(str(err))
        group = args.path[len(SCHEME) :].strip("/").split("/")[-1]
        out_dir = Path(args.out or f"{group}-{REPORT_DIR}")
        source, root = args.path, None
    else:
        root = Path(args.path)
        loaded, bad = read_records(root)
        for u in bad:
            print(f"{PROG}: unreadable record {u.path}: {u.reason} (left out)", file=sys.stderr)
        if not loaded:
            return _error(
                f"no record.json under {root}: is it a run or sweep folder of ssl-bench?"
                if not bad
                else f"no readable record under {root} ({len(bad)} unreadable)"
            )
        records = [(r, run_name(p, root)) for r, p in loaded]
        out_dir = Path(args.out) if args.out else root / REPORT_DIR
        source = str(root)
    try:
        study = None if layout or args.runs else study_of([r for r, _ in records])
    except StudyError as err:
        return _error(str(err))
    try:
        if study is not None:
            report: Table = build_report(
                records, reference=args.reference, source=source, rules=args.rules, unreadable=bad
            )
        elif root is not None and (args.runs or (len(pretraining(records)) == 1 and not layout)):
            if args.format == "tex":
                return _error("--format tex needs a sweep (several runs)")
            return _table(args, root, [(r, p) for r, p in loaded])
        else:
            report = build_sweep(
                records,
                metric=args.metric,
                rows=_keys(args.rows),
                columns=_keys(args.columns),
                source=source,
                unreadable=bad,
            )
    except StudyError as err:
        return _error(str(err))
    return _report(report, [r for r, _ in records], args, out_dir, layout_note=layout and study_of_safe(records))


def study_of_safe(records: list[tuple[dict[str, Any], str]]) -> bool:
    try:
        return study_of([r for r, _ in records]) is not None
    except StudyError:
        return False


def _table(args: argparse.Namespace, root: Path, records: list[tuple[dict[str, Any], Path]]) -> int:
    """One line per run (a single run, or ``--runs``)."""
    rows = collect(root, records)
    if args.format == "console":
        from rich.console import Console

        console = Console()
        console.width = max(console.width, 140)  # a table, not prose: never squeeze it into 80 columns
        console.print(to_rich(rows, title=f"ssl-bench: {root}"))
        for r in rows:
            if r.get("error"):
                print(f"  {r['run']}: {r['status']}: {r['error']}")
    else:
        print(to_markdown(rows) if args.format == "md" else to_csv(rows), end="\n")
    if args.out:
        Path(args.out).write_text(to_csv(rows) if args.format == "csv" else to_markdown(rows) + "\n")
    return 0


def _report(
    report: Table, records: list[dict[str, Any]], args: argparse.Namespace, out_dir: Path, layout_note: bool = False
) -> int:
    """Print the report, write its folder, log it to W&B. A verdict that does not hold is a result
    (exit 0); only errors end non-zero."""
    from ssl_bench.report import render
    from ssl_bench.report.build import StudyReport
    from ssl_bench.report.wandb_report import log_report, used_wandb

    try:
        files = render.write_report(report, out_dir)
    except OSError as err:
        return _error(f"cannot write the report to {out_dir}: {err.strerror or err}")
    if args.format == "console":
        render.print_console(report)
    else:
        print({"md": render.to_markdown, "csv": render.to_csv, "tex": render.to_latex}[args.format](report), end="")
    notes = [f"report: {out_dir} ({', '.join(p.name for p in files.values())})"]
    if layout_note:
        notes.append("the study block is not used: --rows/--columns/--metric give the generic sweep layout")
    if isinstance(report, StudyReport) and report.ignored:
        notes.append(f"{report.ignored} record(s) without the {report.study.name} study block left out")
    if report.unreadable:
        notes.append(f"{len(report.unreadable)} unreadable record(s) left out (listed above)")
    if "png" not in files:
        notes.append("no plot: nothing to plot, or matplotlib is not installed")
    failure = None
    if args.wandb if args.wandb is not None else used_wandb(records):
        try:
            info = log_report(report, records, out_dir, png=files.get("png"))
        except Exception as err:  # the report files are written; say why W&B did not get them
            first = (str(err).strip().splitlines() or [""])[0]
            failure = f"W&B report run not logged: {type(err).__name__}: {first}"
        else:
            where = info["url"] if info["url"] else f"upload later: wandb sync {info['dir']}"
            notes.append(f"W&B: {info['mode']} report run {info['id']} ({where})")
    # console: notes follow the table on stdout; md/csv/tex: stdout holds the table alone
    stream = sys.stdout if args.format == "console" else sys.stderr
    for note in notes:
        print(note, file=stream)
    return 0 if failure is None else _error(failure, code=1)


if __name__ == "__main__":
    sys.exit(main())
