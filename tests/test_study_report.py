"""Study reports: a sweep's records -> the paper's table (mean ± 95% CI per cell), verdicts per rule,
files, figure and a W&B report run. Records are synthetic (written here), so every number below is
known."""

import csv
import io
import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ssl_bench.config import config_dir
from ssl_bench.report.build import build_report, load_study
from ssl_bench.report.cli import main
from ssl_bench.report.render import to_csv, to_latex, to_markdown
from ssl_bench.report.render_json import verdicts_json
from ssl_bench.report.values import normalize, same
from tests.conftest import isolate_wandb, wandb_leet

STUDY = {
    "name": "toy_stopgrad",
    "variant": "quick",
    "title": "SimSiam Fig. 2: stop-gradient",
    "rows": ["method.stop_grad"],
    "columns": [],
    "metric": "knn_acc",
    "metric_label": "kNN top-1 (%)",
    "rules": [
        {
            "kind": "status",
            "where": {"method.stop_grad": False},
            "is": "collapsed",
            "text": "without stop-gradient SimSiam collapses",
        },
        {
            "kind": "status",
            "where": {"method.stop_grad": True},
            "is_not": "collapsed",
            "text": "with stop-gradient it does not",
        },
        {
            "kind": "less",
            "a": {"method.stop_grad": "false"},
            "b": {"method.stop_grad": "true"},
            "margin": 2,
            "text": "without stop-gradient kNN is far below",
        },
    ],
}


def _record(
    study: dict,
    status: str = "finished",
    knn: float | None = 0.5,
    seed: int = 0,
    logger: str = "csv",
    test_size: int | None = None,
    **config,
) -> dict:
    """A record as the training app writes it, reduced to what reports read."""
    cfg: dict = {
        "seed": seed,
        "study": study,
        "logger": {"name": logger, "project": "ssl-bench-test", "group": "sw1", "entity": None},
    }
    if test_size:
        cfg["data"] = {"name": "shapes", "test_size": test_size}
    for dotted, value in config.items():  # method__stop_grad=False -> cfg["method"]["stop_grad"]
        node = cfg
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    failed = status in ("failed", "diverged")
    return {
        "schema_version": 1,
        "name": "job",
        "method": cfg.get("method", {}).get("name", "simsiam"),
        "status": status,
        "seed": seed,
        "overrides": [],
        "config": cfg,
        "epochs": [],
        "init": {},
        "best": {},
        "final": {} if failed or knn is None else {"knn_acc": knn, "linear_acc": knn + 0.1, "z_std_ratio": 0.9},
        "timings": {},
        "wandb": None,
        "error": {"type": "RuntimeError", "message": "CUDA out of memory"} if status == "failed" else None,
    }


def _write(root: Path, name: str, record: dict | str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "record.json").write_text(record if isinstance(record, str) else json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    """SimSiam stop-grad sweep: six collapsed seeds without stop-grad; with it, six finished seeds
    and one that failed. The embedded data's 1,000 test images give the binomial term."""
    root = tmp_path / "sweep"
    for seed, knn in enumerate((0.146, 0.152, 0.148, 0.151, 0.147, 0.150)):
        _write(
            root,
            f"sg=false_seed={seed}",
            _record(STUDY, "collapsed", knn, seed, test_size=1000, method__stop_grad=False),
        )
    for seed, knn in enumerate((0.48, 0.50, 0.495, 0.51, 0.47, 0.485)):
        _write(
            root, f"sg=true_seed={seed}", _record(STUDY, "finished", knn, seed, test_size=1000, method__stop_grad=True)
        )
    _write(root, "sg=true_seed=6", _record(STUDY, "failed", None, 6, test_size=1000, method__stop_grad=True))
    ref = tmp_path / "reference.csv"
    ref.write_text(
        "method.stop_grad,value,metric,source\n"
        "true,67.7,ImageNet linear top-1 (%),SimSiam (Chen & He 2021) Fig. 2\n"
        "false,0.1,ImageNet linear top-1 (%),SimSiam (Chen & He 2021) Fig. 2\n"
    )
    return root, ref


def _half_width(values, n_eval):
    """The CI half-width by hand: var = s^2/n + p(1-p)/N (in %^2), Welch-Satterthwaite df, t quantile."""
    from scipy import stats

    n = len(values)
    m = sum(values) / n
    s2 = sum((v - m) ** 2 for v in values) / (n - 1)
    binom = (m / 100) * (1 - m / 100) / n_eval * 100**2
    var = s2 / n + binom
    df = var**2 / ((s2 / n) ** 2 / (n - 1))
    return stats.t.ppf(0.975, df) * math.sqrt(var)


def test_type_tolerant_equality():
    assert same(True, "true") and same(False, "False") and same(1, 1.0) and same("0.99", 0.99)
    assert same(None, "null") and not same(True, 1) and not same("a", "b")
    assert normalize([1, "2"]) == normalize((1.0, 2))


def test_cells_mean_ci_with_the_binomial_term_status_counts_and_reference(sweep):
    root, ref = sweep
    report = load_study(root, reference=ref)
    assert report is not None and [r[0] for r in report.rows] == [False, True]  # numeric order
    off, on = (report.cell(r, ()) for r in report.rows)
    off_values = [14.6, 15.2, 14.8, 15.1, 14.7, 15.0]
    assert off.mean == pytest.approx(14.9) and off.std == pytest.approx(0.2366432) and off.n == 6
    assert off.summary.known_var == pytest.approx(0.149 * 0.851 / 1000 * 1e4)  # 1.268 %^2
    half = _half_width(off_values, 1000)
    assert off.summary.half_width() == pytest.approx(half) and off.ours() == f"14.9 ± {half:.1f}"
    assert off.runs == "collapsed 6/6" and off.reference == 0.1
    assert on.mean == pytest.approx(49.0) and on.n == 6  # the failed seed has no number
    assert on.runs == "finished 6/7, failed 1/7" and on.reference == 67.7
    assert off.source == "SimSiam (Chen & He 2021) Fig. 2"
    assert [j.run for j in report.problems] == ["sg=true_seed=6"]
    assert report.n_eval == [1000]
    v = report.verdicts
    assert [x.outcome for x in v] == ["holds", "holds", "holds"]
    assert v[0].detail == f"stop_grad=false: 14.9 ± {half:.1f} (n=6), collapsed 6/6"
    assert v[0].p_value == pytest.approx(0.5**6) and v[0].reason.endswith("no seed dropped")
    assert v[1].detail.endswith("(n=6), finished 6/7, failed 1/7")
    assert v[1].reason.endswith("dropped: stop_grad=true: 1 of 7 (failed 1)")
    assert v[2].test == "one-sided paired t-test on per-seed differences (6 shared seeds)"
    assert v[2].p_value < 1e-4 and "b - a = 34.1" in v[2].detail
    # the split's binomial error counts once in the difference: the mean of the two arms' terms
    diffs = [b - a for a, b in zip(off_values, [48.0, 50.0, 49.5, 51.0, 47.0, 48.5])]
    m = sum(diffs) / 6
    seed_var = sum((d - m) ** 2 for d in diffs) / 5 / 6
    binom = (0.149 * 0.851 + 0.49 * 0.51) / 2 / 1000 * 1e4
    assert v[2].difference["se"] == pytest.approx(math.sqrt(seed_var + binom), abs=1e-5)


def test_no_reference_leaves_the_paper_column_empty(sweep, monkeypatch):
    import ssl_bench.report.build as build

    root, _ = sweep
    monkeypatch.setattr(build, "find_reference", lambda name: None)  # as for a study without one
    report = load_study(root)
    assert report is not None and report.reference_path is None
    assert all(c.reference is None for c in report.cells.values())
    assert "Published numbers: no reference table." in to_markdown(report)


def test_without_a_study_block_there_is_no_study(tmp_path):
    _write(tmp_path, "a", _record({}, method__name="simclr"))
    assert load_study(tmp_path) is None


def test_unknown_rule_kind_is_a_clear_error(tmp_path, capsys):
    block = {**STUDY, "rules": [{"kind": "bigger"}]}
    _write(tmp_path, "a", _record(block, method__stop_grad=True))
    assert main([str(tmp_path), "--no-wandb", "--rules", "recorded"]) == 2
    assert "rule 1: unknown kind 'bigger'" in capsys.readouterr().err


# --- regressions: never pool configurations, count a job once --------------------------------------
def _predictor_records(seeds=(0,), fixed_lr_values=(True, False)):
    """SimSiam Table 1's quick grid: predictor x predictor_fixed_lr x seeds. The lr policy only matters
    for the trained predictor: the none / frozen_random jobs of both policies are the same runs
    (identical results), as in experiments/simsiam_predictor/README.md (15.7 and 15.7, 12.8 and 12.8)."""
    block = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "study" / "simsiam_predictor.yaml"))
    block["variant"] = "quick"
    out = []
    for seed in seeds:
        for predictor, status, knn in (
            ("mlp", "finished", None),
            ("none", "collapsed", 0.157),
            ("frozen_random", "finished", 0.128),
        ):
            for fixed in fixed_lr_values:
                value = knn if knn is not None else (0.461 if fixed else 0.525) + 0.01 * seed
                if knn is not None:
                    value += 0.002 * seed
                rec = _record(
                    block,
                    status,
                    value,
                    seed,
                    test_size=1000,
                    method__name="simsiam",
                    method__predictor=predictor,
                    method__predictor_fixed_lr=fixed,
                )
                rec["epochs"] = [{"epoch": 0, "train/loss": -0.5 - value}]  # same run -> same losses
                out.append((rec, f"{predictor}-{fixed}-{seed}"))
    return out


def test_simsiam_predictor_is_evaluated_per_lr_policy_not_pooled():
    """Before: 'predictor=mlp: finished 2/2 (kNN 49.3 ± 4.5)', pooled over the two lr policies."""
    report = build_report(_predictor_records(), reference=None, rules="current")
    trained = report.verdicts[1]
    assert trained.text.startswith("with a trained predictor")
    assert [c.scope for c in trained.cells] == ["predictor_fixed_lr=false", "predictor_fixed_lr=true"]
    assert [c.detail for c in trained.cells] == [
        "predictor=mlp: 52.5 (n=1), finished 1/1",
        "predictor=mlp: 46.1 (n=1), finished 1/1",
    ]
    assert "2/2" not in json.dumps(verdicts_json(report)) and "49.3" not in to_markdown(report)
    assert all(c.outcome == "inconclusive" for c in trained.cells)  # one seed each: too few
    frozen = report.verdicts[2]  # the table's frozen row (fixed lr) vs the trained predictor of the same policy
    assert frozen.cells == [] and [(g["label"], g["mean"], g["n"]) for g in frozen.groups] == [
        ("predictor=frozen_random, predictor_fixed_lr=true", 12.8, 1),
        ("predictor=mlp, predictor_fixed_lr=true", 46.1, 1),
    ]
    assert frozen.outcome == "inconclusive" and frozen.reason.startswith(
        "predictor=frozen_random, predictor_fixed_lr=true: 1 deciding seed, needs >= 3"
    )


def test_simsiam_predictor_identical_runs_are_counted_once():
    """Before: 'predictor=none: collapsed 2/2 (kNN 15.7 ± 0.0)': one computation (the lr policy has no
    effect without a trained predictor) counted as two seeds."""
    report = build_report(_predictor_records(), reference=None, rules="current")
    none = report.verdicts[0]
    assert [c.scope for c in none.cells] == [
        "predictor_fixed_lr=false",
        "predictor_fixed_lr=true (the same runs as predictor_fixed_lr=false: identical results)",
    ]
    assert all(g["n"] == 1 and g["jobs"] == 1 for c in none.cells for g in c.groups)
    assert report.cell(("none", True), ()).same_as == "predictor=none, predictor_fixed_lr=false"
    assert report.cell(("mlp", True), ()).same_as is None
    md = to_markdown(report)
    assert (
        "Same runs (identical results of the same seeds; counted once in every verdict): "
        "predictor=none, predictor_fixed_lr=true = predictor=none, predictor_fixed_lr=false" in md
    )
    # a table without the lr key: the none cell holds both policies' jobs, six seeds -> n = 6, not 12
    block = dict(_predictor_records()[0][0]["config"]["study"], rows=["method.predictor"])
    records = _predictor_records(seeds=(0, 1, 2, 10, 11, 12))  # the study's seed sets
    for rec, _ in records:
        rec["config"]["study"] = block
    pooled = build_report(records, reference=None, rules="recorded")
    cell = pooled.cell(("none",), ())
    assert cell.runs == "collapsed 12/12" and cell.n == 6
    assert pooled.verdicts[0].outcome == "holds" and pooled.verdicts[0].groups[0]["n"] == 6
    assert pooled.verdicts[0].reason.startswith("6/6 deciding jobs: is collapsed")
    assert "identical results to another job 6" in pooled.verdicts[0].reason
    assert pooled.cell(("mlp",), ()).n == 12  # different lr policies: different runs, pooled ...
    assert "Cells pool jobs that differ in method.predictor_fixed_lr (not a table key)." in to_markdown(pooled)


# --- columns, files, figure, W&B -------------------------------------------------------------------
AUG_STUDY = {
    "name": "aug_ablation",
    "title": "BYOL Table 5: augmentations",
    "rows": ["augment.name"],
    "columns": ["method.name"],
    "metric": "linear_acc",
    "metric_label": "linear top-1 (%)",
    "rules": [
        {
            "kind": "larger_drop",
            "axis": "augment.name",
            "base": "full",
            "ablated": "no_color",
            "compare": "method.name",
            "more": "simclr",
            "less": "byol",
            "text": "removing colour hurts SimCLR more than BYOL",
        }
    ],
}


def test_columns_split_the_table(tmp_path):
    records = []
    jitter = {  # per-seed noise of each cell (mean 0), so that the per-seed drops differ
        ("simclr", "no_color"): (0.003, -0.001, -0.002),
        ("byol", "full"): (-0.002, 0.004, -0.002),
        ("byol", "no_color"): (0.001, 0.001, -0.002),
    }
    for method, full, no_color in (("simclr", 0.60, 0.35), ("byol", 0.55, 0.50)):
        for aug, v in (("full", full), ("no_color", no_color)):
            for seed in (0, 1, 2):
                value = v - 0.1 + seed * 0.01 + jitter.get((method, aug), (0, 0, 0))[seed]
                rec = _record(AUG_STUDY, "finished", value, seed, method__name=method, augment__name=aug)
                rec["init"] = {"linear_acc": 0.30 + 0.01 * seed}
                records.append((rec, f"{method}-{aug}-{seed}"))
    ref = tmp_path / "ref.csv"
    ref.write_text(
        "name,method.name,value,metric,source\nfull,simclr,66.6,ImageNet linear,BYOL Table 5\n"
        "full,byol,72.5,ImageNet linear,BYOL Table 5\nno_color,byol,70.6,ImageNet linear,BYOL Table 5\n"
    )
    report = build_report(records, reference=ref)
    # text values keep the reference table's (the paper's) order
    assert [c[0] for c in report.columns] == ["simclr", "byol"]
    assert [r[0] for r in report.rows] == ["full", "no_color"]
    assert report.cell(("full",), ("simclr",)).mean == pytest.approx(61.0)  # linear_acc + 0.1 in the record
    assert report.cell(("no_color",), ("byol",)).reference == 70.6
    assert report.cell(("no_color",), ("simclr",)).reference is None
    assert report.verdicts[0].outcome == "holds" and report.verdicts[0].difference["estimate"] == pytest.approx(20.0)
    md = to_markdown(report)
    assert "| name | simclr: linear top-1 (%) | simclr: n | simclr: runs | simclr: paper | byol:" in md
    assert "No binomial term: the evaluation split's size is unknown" in md
    tex = to_latex(report)
    assert r"\multicolumn{4}{c}{simclr}" in tex and r"\cmidrule(lr){2-5}" in tex and "no\\_color" in tex


def test_cli_writes_every_file_and_exits_0_even_when_a_claim_fails(sweep, tmp_path, capsys):
    root, ref = sweep
    block = json.loads(json.dumps(STUDY))
    block["rules"].append(
        {
            "kind": "less",
            "a": {"method.stop_grad": True},
            "b": {"method.stop_grad": False},
            "text": "a claim our numbers contradict",
        }
    )
    for rec_path in root.rglob("record.json"):
        rec = json.loads(rec_path.read_text())
        rec["config"]["study"] = block
        rec_path.write_text(json.dumps(rec))
    assert main([str(root), "--reference", str(ref), "--format", "console", "--no-wandb"]) == 0
    out = capsys.readouterr().out
    assert "✓ without stop-gradient SimSiam collapses: holds. stop_grad=false: 14.9 ± 2.2 (n=6)" in out
    assert "✗ a claim our numbers contradict: does not hold. " in out and "b - a = -34.1" in out
    assert "b - a < 0: one-sided paired t-test on per-seed differences (6 shared seeds) p < 1e-6 < 0.05" in out
    assert "dropped: stop_grad=true: 1 of 7 (failed 1)" in out
    assert "sg=true_seed=6: failed: CUDA out of memory" in out
    report = root / "report"
    md = (report / "table.md").read_text()
    assert "| false | 14.9 ± 2.2 | 6 | collapsed 6/6 | 0.1 |" in md
    on = _half_width([48.0, 50.0, 49.5, 51.0, 47.0, 48.5], 1000)
    assert f"| true | 49.0 ± {on:.1f} | 6 | finished 6/7, failed 1/7 | 67.7 |" in md
    assert "`sg=true_seed=6`: failed" in md
    assert "Ours: mean ± 95% CI (Student t) over seeds; n: seeds with a number." in md
    assert "binomial error p(1-p)/N_eval (N_eval = 1,000 images" in md
    rows = list(csv.DictReader(io.StringIO((report / "table.csv").read_text())))
    assert [(r["method.stop_grad"], r["mean"], r["n"], r["n_eval"], r["failed"], r["reference"]) for r in rows] == [
        ("false", "14.9", "6", "1000", "0", "0.1"),
        ("true", "49.0", "6", "1000", "1", "67.7"),
    ]
    assert float(rows[0]["ci_low"]) == pytest.approx(
        14.9 - _half_width([14.6, 15.2, 14.8, 15.1, 14.7, 15.0], 1000), abs=1e-3
    )
    tex = (report / "table.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"14.9 $\pm$ 2.2" in tex
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    verdicts = json.loads((report / "verdicts.json").read_text())
    assert [v["outcome"] for v in verdicts["verdicts"]] == ["holds", "holds", "holds", "does not hold"]
    last = verdicts["verdicts"][3]
    assert (
        last["test"].startswith("one-sided paired t-test")
        and last["p_value"] < 0.05
        and last["difference"]["ci"][1] < 0
    )
    assert [g["n"] for g in last["groups"]] == [6, 6] and last["groups"][0]["ci"] is not None
    assert verdicts["holds"] == 3 and verdicts["does_not_hold"] == 1 and verdicts["inconclusive"] == 0
    png = (report / "toy_stopgrad.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_unreadable_records_are_listed_and_the_rest_reported(sweep, capsys):
    root, ref = sweep
    _write(root, "truncated", '{"status": "finished", "config": {"stu')
    _write(root, "a_list", "[1, 2]")
    assert main([str(root), "--reference", str(ref), "--format", "md", "--no-wandb"]) == 0
    captured = capsys.readouterr()
    assert f"unreadable record {root / 'truncated' / 'record.json'}: not valid JSON" in captured.err
    assert f"unreadable record {root / 'a_list' / 'record.json'}: not a run record (a JSON list" in captured.err
    assert "| false | 14.9 ± 2.2 | 6 | collapsed 6/6 | 0.1 |" in captured.out
    assert "### Unreadable records (left out)" in captured.out and "truncated?" in captured.out
    verdicts = json.loads((root / "report" / "verdicts.json").read_text())
    assert len(verdicts["unreadable"]) == 2


def test_cli_formats_and_errors(sweep, tmp_path, capsys):
    root, ref = sweep
    assert (
        main(
            [str(root), "--reference", str(ref), "--format", "csv", "--no-wandb", "--out", str(tmp_path / "elsewhere")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("method.stop_grad,metric,mean,std,se,ci_low,ci_high,n,n_eval,")
    assert (tmp_path / "elsewhere" / "table.tex").is_file()
    assert main([str(root), "--reference", str(tmp_path / "missing.csv"), "--no-wandb"]) == 2
    assert "cannot read reference table" in capsys.readouterr().err
    assert main(["wandb://only/two"]) == 2
    assert "expected wandb://ENTITY/PROJECT/GROUP" in capsys.readouterr().err
    assert main([str(tmp_path / "empty")]) == 2
    assert "no record.json under" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "record.json").write_text("{")
    assert main([str(tmp_path / "broken")]) == 2
    assert "no readable record under" in capsys.readouterr().err


def test_wandb_report_run_written_offline(sweep, tmp_path, monkeypatch, capsys):
    root, ref = sweep
    isolate_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for rec_path in root.rglob("record.json"):  # the jobs logged to W&B: the report run is the default
        rec = json.loads(rec_path.read_text())
        rec["config"]["logger"]["name"] = "wandb"
        rec_path.write_text(json.dumps(rec))
    assert main([str(root), "--reference", str(ref), "--format", "md"]) == 0
    assert "W&B: offline report run" in capsys.readouterr().err
    runs = list((root / "report" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    info = json.loads(wandb_leet(runs[0], "--summary"))  # wandb's own reader
    assert info["state"] == "finished" and info["name"] == "report-toy_stopgrad"
    assert info["project"] == "ssl-bench-test"
    summary = info["summary"]
    assert summary["verdicts/holds"] == 3 and summary["verdict/1"]["outcome"] == "holds"
    assert summary["verdicts/inconclusive"] == 0 and summary["verdict/3"]["p_value"] < 0.05
    assert summary["study/table"]["nrows"] == 2 and summary["study/plot"]["_type"] == "image-file"


def test_wandb_group_address_fails_clearly_offline(tmp_path, monkeypatch, capsys):
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(["wandb://me/ssl-bench/sweep-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssl-bench-report: cannot read wandb://me/ssl-bench/sweep-1: W&B is offline here")
    assert "\n" not in err


def test_reference_metric_picks_one_of_several_published_columns(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text(
        "method.masking,value,metric,source\nstatic,78.3,SQuAD 2.0 F1,T1\nstatic,84.3,MNLI-m,T1\n"
        "dynamic,78.7,SQuAD 2.0 F1,T1\ndynamic,84.0,MNLI-m,T1\n"
    )
    block = {
        "name": "m",
        "variant": "quick",
        "rows": ["method.masking"],
        "metric": "ppl",
        "reference_metric": "MNLI-m",
        "rules": [],
    }
    records = [
        (
            {
                "status": "finished",
                "seed": 0,
                "final": {"ppl": 250.0},
                "config": {"study": block, "method": {"masking": m}},
            },
            m,
        )
        for m in ("static", "dynamic")
    ]
    report = build_report(records, reference=ref)
    assert {c.row[0]: c.reference for c in report.cells.values()} == {"static": 84.3, "dynamic": 84.0}
    assert "binomial" not in to_markdown(report)  # perplexity: no binomial term


def test_random_init_baseline_is_the_mean_of_the_jobs_init_evaluations():
    block = {"name": "s", "variant": "quick", "rows": ["method.stop_grad"], "metric": "knn_acc", "rules": []}
    records = [
        (
            {
                "status": st,
                "seed": i,
                "final": {"knn_acc": v},
                "init": {"knn_acc": init},
                "config": {"study": block, "method": {"stop_grad": sg}},
            },
            f"r{i}",
        )
        for i, (st, v, init, sg) in enumerate([("finished", 0.5, 0.30, True), ("collapsed", 0.1, 0.34, False)])
    ]
    report = build_report(records, reference=None)
    assert report.random_init == pytest.approx(32.0)
    assert "Random-init network (each job's evaluation before training): kNN 32.0." in to_markdown(report)
    assert verdicts_json(report)["random_init"] == pytest.approx(32.0)


NOISE = {0: 0.0, 1: 0.011, 2: 0.004, 10: 0.017, 11: 0.007, 12: 0.013}  # per seed, shared by the arms


def test_current_rules_come_from_the_study_definition():
    """A rule edited in conf/study/<name>.yaml after the sweep applies without rerunning it."""
    block = {"name": "byol_tau", "variant": "quick", "rows": ["method.tau_base"], "metric": "knn_acc", "rules": []}
    records = [
        (
            {
                "status": "finished",
                "seed": s,
                "final": {"knn_acc": v + NOISE[s] + 0.0007 * ((s + int(100 * t)) % 3)},
                "config": {"study": block, "method": {"tau_base": t}},
            },
            f"r{t}-{s}",
        )
        for t, v in ((0, 0.4), (0.9, 0.45), (0.99, 0.43), (1, 0.3))
        for s in (0, 1, 2, 10, 11, 12)  # the seed sets of conf/study/byol_tau.yaml
    ]
    assert build_report(records, rules="recorded").verdicts == []
    current = build_report(records, rules="current")
    kinds = [v.kind for v in current.verdicts]
    assert kinds and set(kinds) <= {"status", "less", "less_or_status", "interior_argmax", "equivalent"}
    tau1 = next(v for v in current.verdicts if v.rule.get("a") == {"method.tau_base": 1})
    assert tau1.outcome == "holds"  # tau 1 (30) is far below 0.9 (45), 6 seeds each
    assert [c["seeds"] for c in tau1.consistency] == ["0-2", "10-12"]  # the current protocol's sets
    assert current.study.seeds == ("0", "1", "2", "10", "11", "12")


def test_every_study_definition_passes_the_checks():
    """conf/study/*.yaml as they are now: every rule is known, complete and can fail."""
    from ssl_bench.report.block import Study

    for path in sorted((Path(config_dir()) / "study").glob("*.yaml")):
        block = OmegaConf.to_container(OmegaConf.load(path))
        block["variant"] = "quick"
        assert Study.from_block(block).rules, path.name


def test_cli_survivorship_diverged_seeds_block_the_verdict_and_are_named(sweep, capsys):
    """Audit case through the CLI: diverged seeds leave the mean; the verdict says so and gives none."""
    root, ref = sweep
    for seed in (7, 8, 9):
        _write(root, f"sg=true_seed={seed}", _record(STUDY, "diverged", None, seed, method__stop_grad=True))
    assert main([str(root), "--reference", str(ref), "--format", "md", "--no-wandb"]) == 0
    out = capsys.readouterr().out
    verdicts = json.loads((root / "report" / "verdicts.json").read_text())["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["holds", "inconclusive", "inconclusive"]
    assert "stop_grad=true lost 4 of 10 seeds: the survivors are not a random sample of seeds" in out
    assert "dropped: stop_grad=true: 4 of 10 (failed 1, diverged 3)" in verdicts[1]["reason"]


# --- compare: true (the methods benchmark) ------------------------------------------------------------
COMPARE = {
    "name": "toy_methods",
    "variant": "quick",
    "title": "every method",
    "rows": ["method.name"],
    "columns": [],
    "metric": "knn_acc",
    "metric_label": "kNN top-1 (%)",
    "compare": True,
    "rules": [{"kind": "status", "where": {"method.name": "a"}, "is_not": "collapsed", "text": "a does not collapse"}],
}
PER_SEED = {
    "a": [0.50, 0.52, 0.49, 0.51, 0.505, 0.53],  # distinct values: identical results count once
    "b": [0.400, 0.410, 0.390, 0.420, 0.405, 0.415],
    "c": [0.405, 0.400, 0.395, 0.430, 0.396, 0.425],  # c - b: +-0.01 around 0.002, no difference
    "d": [0.90, 0.91],  # two seeds: below the evidence gate, compared with nothing
}


def test_a_comparing_study_lists_what_each_cell_beats_holm_over_every_pair(tmp_path):
    """Paired one-sided t-tests (scipy) on every ordered pair of the cells with 3+ seeds, Holm over the 6 pairs
    by hand: a beats b and c, b and c beat nothing, d (2 seeds) is in no comparison."""
    from scipy import stats

    records = [
        (_record(COMPARE, "finished", v, seed, method__name=m), f"{m}_{seed}")
        for m, values in PER_SEED.items()
        for seed, v in enumerate(values)
    ]
    (tmp_path / "ref.csv").write_text("method.name,value,metric,source\n")
    report = build_report(records, reference=tmp_path / "ref.csv")
    pairs = [(x, y) for x in "abc" for y in "abc" if x != y]
    raw = [stats.ttest_rel(PER_SEED[x], PER_SEED[y], alternative="greater").pvalue for x, y in pairs]
    order = sorted(range(len(raw)), key=lambda i: raw[i])
    holm, running = [0.0] * len(raw), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[i]))
        holm[i] = running
    expected = {x: sorted(y for (xx, y), p in zip(pairs, holm) if xx == x and p < 0.05) for x in "abcd"}
    assert expected == {"a": ["b", "c"], "b": [], "c": [], "d": []}  # the data are as the docstring says
    cell = {row[0]: report.cell(row, ()) for row in report.rows}
    got = {m: sorted(d.row[0] for d in report.better.get(id(cell[m]), [])) for m in "abcd"}
    assert got == expected and report.compared == 6 and id(cell["d"]) not in report.better
    md = to_markdown(report)
    assert "| better than |" in md and "| finished 6/6 | - | b, c |" in md and md.count("| - | - |") == 2
    assert "| 2 | finished 2/2 | - | not compared |" in md
    assert "Holm over all 6 ordered pairs tested" in md
    payload = verdicts_json(report)
    assert payload["better_than"]["name=a"] == ["name=b", "name=c"] and payload["pairs_compared"] == 6
    assert payload["better_than"]["name=d"] is None and payload["better_than"]["name=b"] == []
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert {r["method.name"]: r["better_than"] for r in rows} == {"a": "b, c", "b": "-", "c": "-", "d": "not compared"}
    assert "better than" in to_latex(report)


def test_a_study_without_compare_has_no_better_than_column(sweep):
    root, ref = sweep
    report = load_study(root, reference=ref)
    assert not report.better and "better than" not in to_markdown(report)


def test_compare_must_be_a_boolean(tmp_path):
    from ssl_bench.report.block import Study, StudyError

    with pytest.raises(StudyError, match="compare='yes'; allowed: true, false"):
        Study.from_block({**COMPARE, "compare": "yes"})
