"""Compatibility: the names ``ssl_bench.report.study`` used to hold, now in the report's parts
(values, cells, block, rules, reference, build, render). New code imports from those modules."""

from __future__ import annotations

from ssl_bench.report.block import Study, StudyError, current_block, study_of
from ssl_bench.report.build import REPORT_DIR, StudyReport, build_report, load_study
from ssl_bench.report.cells import Cell, Job, run_name, runs_text, select, status_counts
from ssl_bench.report.reference import REFERENCE_FILE, find_reference, load_reference
from ssl_bench.report.render import to_csv, to_latex, to_markdown, verdict_lines, write_report
from ssl_bench.report.render_json import verdicts_json
from ssl_bench.report.rules import RULES, Verdict, evaluate_rules
from ssl_bench.report.values import config_value, flatten, normalize, same, short_key, show

__all__ = [
    "REFERENCE_FILE",
    "REPORT_DIR",
    "RULES",
    "Cell",
    "Job",
    "Study",
    "StudyError",
    "StudyReport",
    "Verdict",
    "build_report",
    "config_value",
    "current_block",
    "evaluate_rules",
    "find_reference",
    "flatten",
    "load_reference",
    "load_study",
    "normalize",
    "run_name",
    "runs_text",
    "same",
    "select",
    "short_key",
    "show",
    "status_counts",
    "study_of",
    "to_csv",
    "to_latex",
    "to_markdown",
    "verdict_lines",
    "verdicts_json",
    "write_report",
]
