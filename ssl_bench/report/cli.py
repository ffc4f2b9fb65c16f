"""``ssl-bench-report PATH``: the table of a run or sweep folder (console, markdown or CSV).

When the jobs carry a ``study`` block (a paper's ablation), the study's table instead: our numbers
beside the published ones and a verdict per rule, also written to ``PATH/report/`` (table.md,
table.csv, table.tex, verdicts.json, <study>.png) and, when the jobs logged to W&B, logged as a
``report`` run in their group. PATH may also be ``wandb://ENTITY/PROJECT/GROUP`` (online).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ssl_bench.report import study as st
from ssl_bench.report.table import collect, to_csv, to_markdown, to_rich
from ssl_bench.tracking.record import find_records, load_record

PROG = "ssl-bench-report"


def _error(message: str, code: int = 2) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    from ssl_bench.report.wandb_report import SCHEME

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a run folder or a sweep folder (searched recursively for record.json), "
                                     f"or {SCHEME}ENTITY/PROJECT/GROUP")
    parser.add_argument("--format", choices=("console", "md", "csv", "tex"), default="console",
                        help="what to print (tex: study sweeps only)")
    parser.add_argument("--out", help="also write the table to this file (format from --format, md if console); "
                                      f"for a study: the report folder (default PATH/{st.REPORT_DIR})")
    parser.add_argument("--reference", help="study: CSV of the published numbers "
                                            "(default experiments/<study>/reference.csv)")
    parser.add_argument("--rules", choices=("current", "recorded"), default="current",
                        help="study: judge by the rules of conf/study/<study>.yaml as it is now (default; an "
                             "edited rule applies without rerunning) or by those saved in the records")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=None,
                        help="study: log a report run to W&B (default: when the jobs logged to W&B)")
    args = parser.parse_args(argv)

    if args.path.startswith(SCHEME):
        from ssl_bench.report.wandb_report import fetch_group

        try:
            records = fetch_group(args.path)
        except st.StudyError as err:
            return _error(str(err))
        group = args.path[len(SCHEME):].strip("/").split("/")[-1]
        return _study(records, args, source=args.path, out_dir=Path(args.out or f"{group}-{st.REPORT_DIR}"))

    root = Path(args.path)
    paths = find_records(root)
    try:
        loaded = [(load_record(p), p) for p in paths]      # read once, for the study check and the table
        study = st.study_of([r for r, _ in loaded])
    except (ValueError, OSError) as err:      # a broken record or study block
        return _error(str(err))
    if study is not None:
        records = [(r, st.run_name(p, root)) for r, p in loaded]
        return _study(records, args, source=str(root), out_dir=Path(args.out) if args.out else root / st.REPORT_DIR)
    if args.format == "tex":
        return _error("--format tex needs a study sweep (jobs with a study block)")
    return _table(args, loaded)


def _table(args: argparse.Namespace, records: list[tuple[dict[str, Any], Path]]) -> int:
    """One line per run (sweeps without a study block)."""
    try:
        rows = collect(args.path, records)
    except FileNotFoundError as err:
        return _error(str(err))
    if args.format == "console":
        from rich.console import Console

        console = Console()
        console.width = max(console.width, 140)    # a table, not prose: never squeeze it into 80 columns
        console.print(to_rich(rows, title=f"ssl-bench: {Path(args.path)}"))
        for r in rows:
            if r.get("error"):
                print(f"  {r['run']}: {r['status']}: {r['error']}")
    else:
        print(to_markdown(rows) if args.format == "md" else to_csv(rows), end="\n")
    if args.out:
        Path(args.out).write_text(to_csv(rows) if args.format == "csv" else to_markdown(rows) + "\n")
    return 0


def _study(records: list[tuple[dict[str, Any], str]], args: argparse.Namespace, source: str, out_dir: Path) -> int:
    """The study table and verdicts: printed, written to ``out_dir``, logged to W&B. A verdict that
    does not hold is a result (exit 0); only errors end non-zero."""
    from ssl_bench.report.wandb_report import log_report, used_wandb

    try:
        report = st.build_report(records, reference=args.reference, source=source, rules=args.rules)
        files = st.write_report(report, out_dir)
    except st.StudyError as err:
        return _error(str(err))
    except OSError as err:
        return _error(f"cannot write the report to {out_dir}: {err.strerror or err}")
    _print_study(report, args.format)
    notes = [f"report: {out_dir} ({', '.join(p.name for p in files.values())})"]
    if report.ignored:
        notes.append(f"{report.ignored} record(s) without the {report.study.name} study block left out")
    if "png" not in files:
        notes.append("no plot: nothing to plot, or matplotlib is not installed")
    failure = None
    plain = [r for r, _ in records]
    if args.wandb if args.wandb is not None else used_wandb(plain):
        try:
            info = log_report(report, plain, out_dir, png=files.get("png"))
        except Exception as err:   # the report files are written; say why W&B did not get them
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


def _print_study(report: st.StudyReport, fmt: str) -> None:
    if fmt == "md":
        print(st.to_markdown(report), end="")
        return
    if fmt == "csv":
        print(st.to_csv(report), end="")
        return
    if fmt == "tex":
        print(st.to_latex(report), end="")
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    console.width = max(console.width, 120)
    console.print(st.to_rich(report))
    style = {True: "green", False: "red", None: "dim"}
    for verdict, line in zip(report.verdicts, st.verdict_lines(report)):
        console.print(f"[{style[verdict.holds]}]{escape(line)}[/]", soft_wrap=True)
    for job in report.problems:
        print(f"  {job.run}: {job.status}" + (f": {job.error}" if job.error else ""))


if __name__ == "__main__":
    sys.exit(main())
