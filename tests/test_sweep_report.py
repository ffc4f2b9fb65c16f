"""Any sweep aggregated: the keys that vary as columns, seeds aggregated per cell (mean ± CI, n,
status counts), sorted by the metric, the best cell and what it is significantly better than;
synthetic records with known numbers, and one real tiny sweep through both CLIs."""

import csv
import io
import json
import subprocess
import sys

import pytest

from ssl_bench.report.build import build_sweep, varying_keys
from ssl_bench.report.cells import job_from_record
from ssl_bench.report.cli import main
from ssl_bench.report.render import to_markdown
from tests.conftest import TINY

# kNN (fractions) per (temperature, colour strength) and seed: (0.5, 1.0) is clearly the best
KNN = {
    ("0.1", "0.5"): (0.40, 0.42),
    ("0.1", "1.0"): (0.50, 0.52),
    ("0.5", "0.5"): (0.45, 0.47),
    ("0.5", "1.0"): (0.60, 0.61),
}


def _record(
    overrides: list[str],
    knn: float | None,
    seed: int,
    status: str = "finished",
    method: str = "simclr",
    final: dict | None = None,
) -> dict:
    cfg = {
        "seed": seed,
        "method": {"name": method},
        "logger": {"name": "none"},
        "data": {"name": "shapes", "test_size": 1000},
    }
    for o in overrides:
        key, value = o.split("=", 1)
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = float(value) if value.replace(".", "").isdigit() else value
    return {
        "schema_version": 1,
        "name": "job",
        "method": method,
        "status": status,
        "seed": seed,
        "overrides": overrides,
        "config": cfg,
        "epochs": [],
        "init": {"knn_acc": 0.30},
        "best": {},
        "final": final if final is not None else ({} if knn is None else {"knn_acc": knn, "linear_acc": knn + 0.2}),
        "timings": {},
        "wandb": None,
        "error": None,
    }


def _write(root, name, record):
    (root / name).mkdir(parents=True)
    (root / name / "record.json").write_text(record if isinstance(record, str) else json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    """2 keys x 2 values x 2 seeds, with bookkeeping and constant overrides that must not count; job
    folders cut short and hashed as Hydra names them (the report never reads folder names)."""
    root = tmp_path / "sweep"
    for (t, c), values in KNN.items():
        for seed, knn in enumerate(values):
            overrides = [
                f"method.temperature={t}",
                f"augment.color_strength={c}",
                f"seed={seed}",
                "trainer.max_epochs=3",
                "logger=none",
                "hydra.launcher.n_jobs=2",
                "trainer.enable_progress_bar=false",
            ]
            _write(root, f"augment.color_str-{t}{c}{seed}", _record(overrides, knn, seed))
    return root


def _records(root):
    from ssl_bench.report.cells import read_records, run_name

    loaded, _ = read_records(root)
    return [(r, run_name(p, root)) for r, p in loaded]


def test_two_keys_two_values_two_seeds_give_four_rows_with_n_2(sweep):
    report = build_sweep(_records(sweep))
    assert report.keys == ["method.temperature", "augment.color_strength"]  # not seed, not bookkeeping
    assert report.row_keys == ("method.temperature", "augment.color_strength") and report.column_keys == ()
    cells = report.ordered_cells
    assert len(cells) == 4 and all(c.n == 2 for c in cells)
    assert [(c.row, round(c.mean, 1)) for c in cells] == [
        (("0.5", "1.0"), 60.5),
        (("0.1", "1.0"), 51.0),
        (("0.5", "0.5"), 46.0),
        (("0.1", "0.5"), 41.0),
    ]
    assert report.best is cells[0]
    md = to_markdown(report)
    assert "| temperature | color_strength | kNN % | n | runs | vs best |" in md
    lines = [line for line in md.splitlines() if line.startswith("| 0.")]
    assert len(lines) == 4 and lines[0].startswith("| 0.5 | 1.0 | 60.5 ± ")
    assert "| 2 | finished 2/2 | best |" in lines[0]
    assert "augment.color_str-" not in md  # never a cut folder name


def test_the_best_is_marked_with_what_it_is_significantly_better_than(sweep):
    report = build_sweep(_records(sweep))
    sig, not_sig = report.better_than()
    # best 60.5 vs 51.0: the cells share seeds 0 and 1, so the test is paired on the per-seed differences
    # (10 and 9 points) with the split's binomial term (N_eval 1000) counted once; every other cell is
    # further below; each p is Holm-adjusted over all 12 ordered pairs of the 4 cells
    assert [c.row for c in sig] == [("0.1", "1.0"), ("0.5", "0.5"), ("0.1", "0.5")] and not not_sig
    from ssl_bench.report.statistics import holm, paired

    second = report.cell(("0.1", "1.0"), ())
    raw = paired([10.0, 9.0], known_var=(0.605 * 0.395 + 0.51 * 0.49) / 2 / 1000 * 1e4).p_greater(0)
    assert report.vs_best[id(second)] >= raw and report.vs_best[id(second)] <= 12 * raw
    assert holm([raw] + [1.0] * 11)[0] == pytest.approx(12 * raw)
    md = to_markdown(report)
    assert (
        "Best: temperature=0.5, color_strength=1.0 (60.5 ± " in md
        and "significantly better than 3 of 3: temperature=0.1, color_strength=1.0; " in md
    )
    assert "worse (p < 1e-6)" in md and "Holm over all 12 ordered pairs of cells" in md


def test_noisy_cells_are_not_significantly_worse(tmp_path):
    for i, (t, values) in enumerate((("0.1", (0.40, 0.60)), ("0.5", (0.45, 0.66)))):
        for k, knn in enumerate(values):
            seed = 2 * i + k  # no shared seeds: an unpaired Welch test
            _write(tmp_path, f"{i}{k}", _record([f"method.temperature={t}", f"seed={seed}"], knn, seed))
    report = build_sweep(_records(tmp_path))
    sig, not_sig = report.better_than()
    assert report.best.row == ("0.5",) and not sig and len(not_sig) == 1
    assert "significantly better than 0 of 1" in to_markdown(report) and "n.s. (p = " in to_markdown(report)


def test_cli_writes_the_report_folder(sweep, capsys):
    assert main([str(sweep), "--format", "md", "--no-wandb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Sweep ") and "| 0.5 | 1.0 | 60.5 ±" in out
    folder = sweep / "report"
    rows = list(csv.DictReader(io.StringIO((folder / "table.csv").read_text())))
    assert [(r["method.temperature"], r["augment.color_strength"], r["n"], r["best"]) for r in rows][0] == (
        "0.5",
        "1.0",
        "2",
        "True",
    )
    assert len(rows) == 4 and all(r["finished"] == "2" for r in rows)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["best"]["cell"] == "temperature=0.5, color_strength=1.0" and len(summary["better_than"]) == 3
    assert r"\toprule" in (folder / "table.tex").read_text()
    png = (folder / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_rows_columns_and_metric_choose_the_layout(sweep, capsys):
    assert (
        main(
            [
                str(sweep),
                "--format",
                "md",
                "--no-wandb",
                "--rows",
                "method.temperature",
                "--columns",
                "augment.color_strength",
                "--metric",
                "linear_acc",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| temperature | 0.5: linear % | 0.5: n | 0.5: runs | 0.5: vs best | 1.0: linear % |" in out
    body = [line for line in out.splitlines() if line.startswith("| 0.")]
    assert len(body) == 2 and body[0].startswith("| 0.5 | 66.0 ± ") and "| 80.5 ± " in body[0]
    assert main([str(sweep), "--no-wandb", "--rows", "method.temprature"]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown key 'method.temprature': no job has it; keys that vary: method.temperature, augment.color_strength"
    ) in err
    assert main([str(sweep), "--no-wandb", "--rows", "seed"]) == 2
    assert "seed is the replicate axis" in capsys.readouterr().err
    assert main([str(sweep), "--no-wandb", "--metric", "top9"]) == 2
    assert "no job has final.top9; metrics: knn_acc, linear_acc" in capsys.readouterr().err


def test_a_row_key_subset_pools_the_rest_and_says_so(sweep):
    report = build_sweep(_records(sweep), rows=["method.temperature"])
    assert [c.n for c in report.ordered_cells] == [4, 4]
    assert "Cells pool jobs that differ in augment.color_strength (not a table key)." in to_markdown(report)


def test_group_choices_failed_jobs_and_unreadable_records(tmp_path, capsys):
    for seed in (0, 1):
        _write(tmp_path, f"simclr{seed}", _record([f"seed={seed}"], 0.5 + 0.01 * seed, seed))
        byol = _record(["method=byol", f"seed={seed}"], 0.4 + 0.01 * seed, seed, method="byol")
        _write(tmp_path, f"byol{seed}", byol)
    _write(tmp_path, "byol2", _record(["method=byol", "seed=2"], None, 2, status="failed", method="byol"))
    _write(tmp_path, "cut", '{"status": "fini')
    assert main([str(tmp_path), "--format", "md", "--no-wandb"]) == 0
    captured = capsys.readouterr()
    assert "| method | kNN % | n | runs | vs best |" in captured.out  # a group choice shows as its group
    assert "| simclr | 50.5 ± " in captured.out and "| byol | 40.5 ± " in captured.out
    assert "| 2 | finished 2/3, failed 1/3 |" in captured.out
    assert f"unreadable record {tmp_path / 'cut' / 'record.json'}: not valid JSON" in captured.err
    assert "### Unreadable records (left out)" in captured.out


def test_masked_lm_sweeps_sort_by_perplexity_lower_is_better(tmp_path):
    for i, (bs, ppl) in enumerate((("8", (250.0, 252.0)), ("32", (240.0, 241.0)), ("128", (300.0, 310.0)))):
        for seed, p in enumerate(ppl):
            rec = _record([f"data.batch_size={bs}", f"seed={seed}"], None, seed, method="mlm", final={"ppl": p})
            _write(tmp_path, f"{i}{seed}", rec)
    report = build_sweep(_records(tmp_path))
    assert report.metric == "ppl" and report.lower_better
    assert [c.row[0] for c in report.ordered_cells] == ["32", "8", "128"]
    assert "| batch_size | ppl (lower is better) |" in to_markdown(report)
    assert "binomial" not in to_markdown(report)


def test_records_without_overrides_use_the_config_differences():
    records = [
        (
            {
                "status": "finished",
                "seed": s,
                "final": {"knn_acc": 0.5 + 0.1 * t + 0.01 * s},
                "config": {"seed": s, "method": {"temperature": t, "name": "simclr"}, "logger": {"name": f"x{s}"}},
            },
            f"r{t}{s}",
        )
        for t in (0.1, 0.5)
        for s in (0, 1)
    ]
    jobs = [job_from_record(r, n, "knn_acc") for r, n in records]
    assert varying_keys(jobs) == ["method.temperature"]  # not seed, not logger
    assert [c.n for c in build_sweep(records).ordered_cells] == [2, 2]


def test_a_single_run_folder_prints_its_one_line_table(tmp_path, capsys):
    _write(tmp_path, "run", _record([], 0.6, 0))
    assert main([str(tmp_path / "run"), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| run | method | status | kNN % |") and "| run | simclr | finished | 60.0 |" in out
    assert not (tmp_path / "run" / "report").exists()
    assert main([str(tmp_path / "run"), "--format", "tex"]) == 2
    assert "--format tex needs a sweep" in capsys.readouterr().err


def test_a_real_tiny_sweep_through_the_clis(tmp_path):
    """``ssl-bench -m method.temperature=0.1,0.5 augment.color_strength=0.5,1.0 seed=0,1`` (tiny
    settings) -> 4 rows, the two swept keys as columns, n = 2 each."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "ssl_bench.app",
        "-m",
        "method.temperature=0.1,0.5",
        "augment.color_strength=0.5,1.0",
        "seed=0,1",
        *TINY,
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "trainer.num_threads=1",
        "eval.initial=false",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = subprocess.run(
        [sys.executable, "-m", "ssl_bench.report.cli", str(sweep), "--format", "md"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert "| temperature | color_strength | kNN % | n | runs | vs best |" in lines
    body = [line.split(" | ") for line in lines if line.startswith("| 0.")]
    assert len(body) == 4 and all(cells[3] == "2" for cells in body)
    assert sorted((cells[0].strip("| "), cells[1]) for cells in body) == [
        ("0.1", "0.5"),
        ("0.1", "1.0"),
        ("0.5", "0.5"),
        ("0.5", "1.0"),
    ]
    assert all(" ± " in cells[2] for cells in body if "finished" in cells[4] or "collapsed" in cells[4])
    assert (sweep / "report" / "sweep.png").is_file() and (sweep / "report" / "table.tex").is_file()


def test_wandb_report_run_of_a_sweep_written_offline(sweep, tmp_path, monkeypatch, capsys):
    from tests.conftest import isolate_wandb, wandb_leet

    isolate_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for rec_path in sweep.rglob("record.json"):  # the jobs logged to W&B: the report run is the default
        rec = json.loads(rec_path.read_text())
        rec["config"]["logger"] = {"name": "wandb", "project": "ssl-bench-test", "group": "sweep-1", "entity": None}
        rec_path.write_text(json.dumps(rec))
    assert main([str(sweep), "--format", "md"]) == 0
    assert "W&B: offline report run" in capsys.readouterr().err
    runs = list((sweep / "report" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    info = json.loads(wandb_leet(runs[0], "--summary"))
    assert info["state"] == "finished" and info["name"] == "report-sweep" and info["project"] == "ssl-bench-test"
    summary = info["summary"]
    assert summary["best"]["cell"] == "temperature=0.5, color_strength=1.0" and len(summary["better_than"]) == 3
    assert summary["sweep/table"]["nrows"] == 4 and summary["sweep/plot"]["_type"] == "image-file"


def test_a_seeds_only_sweep_is_one_cell_and_an_absent_key_is_not_set(tmp_path):
    for s in range(3):
        _write(tmp_path / "seeds", f"j{s}", _record([f"seed={s}"], 0.5 + 0.01 * s, s))
    md = to_markdown(build_sweep(_records(tmp_path / "seeds")))
    assert "| kNN % | n | runs | vs best |" in md and "| 51.0 ± " in md and "| 3 | finished 3/3 | - |" in md
    assert "One configuration with a number (all jobs): nothing to compare." in md
    for s in range(2):
        _write(tmp_path / "partial", f"a{s}", _record([f"seed={s}"], 0.5 + 0.01 * s, s))
        _write(tmp_path / "partial", f"b{s}", _record(["+method.extra=1", f"seed={s}"], 0.6 + 0.01 * s, s))
    md = to_markdown(build_sweep(_records(tmp_path / "partial")))
    assert "| extra | kNN % |" in md and "| not set | 50.5 ± " in md and "| 1 | 60.5 ± " in md
