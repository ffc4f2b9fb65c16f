"""``ssl-bench-report PATH``: the table of a run or sweep folder (console, markdown or CSV)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssl_bench.report.table import collect, to_csv, to_markdown, to_rich


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssl-bench-report", description=__doc__)
    parser.add_argument("path", help="a run folder or a sweep folder (searched recursively for record.json)")
    parser.add_argument("--format", choices=("console", "md", "csv"), default="console")
    parser.add_argument("--out", help="also write the table to this file (format from --format, md if console)")
    args = parser.parse_args(argv)
    try:
        rows = collect(args.path)
    except FileNotFoundError as err:
        print(f"ssl-bench-report: {err}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
