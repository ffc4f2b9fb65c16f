"""Study reports: a sweep's records -> the paper's table, verdicts per rule, files, figure and a W&B
report run. Records are synthetic (written here), so every number below is known."""

import csv
import io
import json
from pathlib import Path

import pytest

from ssl_bench.report.cli import main
from tests.conftest import isolate_wandb, wandb_leet
from ssl_bench.report.study import Job, Study, build_report, evaluate_rules, load_study, normalize, same

STUDY = {
    "name": "toy_stopgrad", "variant": "quick", "title": "SimSiam Fig. 2: stop-gradient",
    "rows": ["method.stop_grad"], "columns": [], "metric": "knn_acc", "metric_label": "kNN top-1 (%)",
    "rules": [
        {"kind": "status", "where": {"method.stop_grad": False}, "is": "collapsed",
         "text": "without stop-gradient SimSiam collapses"},
        {"kind": "status", "where": {"method.stop_grad": True}, "is_not": "collapsed",
         "text": "with stop-gradient it does not"},
        {"kind": "less", "a": {"method.stop_grad": "false"}, "b": {"method.stop_grad": "true"}, "margin": 2,
         "text": "without stop-gradient kNN is far below"},
    ],
}


def _record(study: dict, status: str = "finished", knn: float | None = 0.5, seed: int = 0, logger: str = "csv",
            **config) -> dict:
    """A record as the training app writes it, reduced to what reports read."""
    cfg: dict = {"seed": seed, "study": study, "logger": {"name": logger, "project": "ssl-bench-test", "group": "sw1",
                                                          "entity": None}}
    for dotted, value in config.items():     # method__stop_grad=False -> cfg["method"]["stop_grad"]
        node = cfg
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    failed = status in ("failed", "diverged")
    return {"schema_version": 1, "name": "job", "method": cfg.get("method", {}).get("name", "simsiam"),
            "status": status, "seed": seed, "overrides": [], "config": cfg, "epochs": [], "init": {}, "best": {},
            "final": {} if failed or knn is None else {"knn_acc": knn, "linear_acc": knn + 0.1, "z_std_ratio": 0.9},
            "timings": {}, "wandb": None,
            "error": {"type": "RuntimeError", "message": "CUDA out of memory"} if status == "failed" else None}


def _write(root: Path, name: str, record: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "record.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    """SimSiam stop-grad sweep: two collapsed seeds without stop-grad; with it, two finished seeds and
    one that failed."""
    root = tmp_path / "sweep"
    _write(root, "0_sg=false_seed=0", _record(STUDY, "collapsed", 0.146, 0, method__stop_grad=False))
    _write(root, "1_sg=false_seed=1", _record(STUDY, "collapsed", 0.152, 1, method__stop_grad=False))
    _write(root, "2_sg=true_seed=0", _record(STUDY, "finished", 0.48, 0, method__stop_grad=True))
    _write(root, "3_sg=true_seed=1", _record(STUDY, "finished", 0.50, 1, method__stop_grad=True))
    _write(root, "4_sg=true_seed=2", _record(STUDY, "failed", None, 2, method__stop_grad=True))
    ref = tmp_path / "reference.csv"
    ref.write_text("method.stop_grad,value,metric,source\n"
                   "true,67.7,ImageNet linear top-1 (%),SimSiam (Chen & He 2021) Fig. 2\n"
                   "false,0.1,ImageNet linear top-1 (%),SimSiam (Chen & He 2021) Fig. 2\n")
    return root, ref


def test_type_tolerant_equality():
    assert same(True, "true") and same(False, "False") and same(1, 1.0) and same("0.99", 0.99)
    assert same(None, "null") and not same(True, 1) and not same("a", "b")
    assert normalize([1, "2"]) == normalize((1.0, 2))


def test_cells_mean_std_status_counts_and_reference(sweep):
    root, ref = sweep
    report = load_study(root, reference=ref)
    assert report is not None and [r[0] for r in report.rows] == [False, True]   # numeric order
    off, on = (report.cell(r, ()) for r in report.rows)
    assert off.mean == pytest.approx(14.9) and off.std == pytest.approx(0.4243, abs=1e-3) and off.n == 2
    assert off.runs == "collapsed 2/2" and off.reference == 0.1
    assert on.mean == pytest.approx(49.0) and on.n == 2            # the failed seed has no number
    assert on.runs == "finished 2/3, failed 1/3" and on.reference == 67.7
    assert on.ours(100) == "49.0 ± 1.4" and off.source == "SimSiam (Chen & He 2021) Fig. 2"
    assert [j.run for j in report.problems] == ["4_sg=true_seed=2"]
    texts = [(v.holds, v.detail) for v in report.verdicts]
    assert texts[0] == (True, "stop_grad=false: collapsed 2/2 (kNN 14.9 ± 0.4)")
    assert texts[1] == (True, "stop_grad=true: finished 2/3, failed 1/3 (kNN 49.0 ± 1.4)")
    assert texts[2][0] is True and texts[2][1].endswith("14.9 < 49.0 - 2")


def test_no_reference_leaves_the_paper_column_empty(sweep, monkeypatch):
    import ssl_bench.report.study as study_module

    root, _ = sweep
    monkeypatch.setattr(study_module, "find_reference", lambda name: None)   # as for a study without one
    report = load_study(root)
    assert report is not None and report.reference_path is None
    assert all(c.paper(100) == "-" for c in report.cells.values())


def test_without_a_study_block_there_is_no_study(tmp_path):
    _write(tmp_path, "a", _record({}, method__name="simclr"))
    assert load_study(tmp_path) is None


# --- each rule kind, holding and not holding ------------------------------------------------------
def _jobs(*specs) -> list[Job]:
    """(status, knn %, config dict) -> jobs; knn None = no number."""
    return [Job(run=f"j{i}", status=s, config=cfg, value=v) for i, (s, v, cfg) in enumerate(specs)]


def _verdict(rule: dict, jobs: list[Job], rows=("method.tau_base",)) -> tuple:
    study = Study.from_block({"name": "s", "rows": list(rows), "rules": [rule]})
    v = evaluate_rules(study, jobs)[0]
    return v.holds, v.detail


def _tau(t: float) -> dict:
    return {"method": {"name": "byol", "tau_base": t}}


def test_rule_status():
    rule = {"kind": "status", "where": {"method.tau_base": 0}, "is": "collapsed"}
    assert _verdict(rule, _jobs(("collapsed", 10.0, _tau(0)), ("collapsed", 12.0, _tau(0))))[0] is True
    holds, detail = _verdict(rule, _jobs(("collapsed", 10.0, _tau(0)), ("finished", 30.0, _tau(0))))
    assert holds is False and detail == "tau_base=0: finished 1/2, collapsed 1/2 (kNN 20.0 ± 14.1)"
    assert _verdict(rule, _jobs(("finished", 30.0, _tau(0.99))))[0] is None                  # no such job
    assert _verdict(rule, _jobs(("failed", None, _tau(0))))[0] is None                       # only a failure
    not_rule = {"kind": "status", "where": {"method.tau_base": 0.99}, "is_not": "collapsed"}
    assert _verdict(not_rule, _jobs(("finished", 50.0, _tau(0.99))))[0] is True
    assert _verdict(not_rule, _jobs(("collapsed", 9.0, _tau(0.99))))[0] is False


def test_rule_less_with_margin():
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": "0.99"}, "margin": 2}
    holds, detail = _verdict(rule, _jobs(("finished", 40.0, _tau(1.0)), ("finished", 50.0, _tau(0.99))))
    assert holds is True and detail.endswith("40.0 < 50.0 - 2")
    holds, detail = _verdict(rule, _jobs(("finished", 49.0, _tau(1.0)), ("finished", 50.0, _tau(0.99))))
    assert holds is False and detail.endswith("49.0 >= 50.0 - 2")                          # below, not clearly
    assert _verdict(rule, _jobs(("failed", None, _tau(1.0)), ("finished", 50.0, _tau(0.99))))[0] is None


def test_rule_less_or_status():
    rule = {"kind": "less_or_status", "a": {"method.tau_base": 0}, "b": {"method.tau_base": 0.99},
            "or_status": "collapsed", "margin": 10}
    assert _verdict(rule, _jobs(("collapsed", 45.0, _tau(0)), ("finished", 50.0, _tau(0.99))))[0] is True
    assert _verdict(rule, _jobs(("finished", 20.0, _tau(0)), ("finished", 50.0, _tau(0.99))))[0] is True
    holds, detail = _verdict(rule, _jobs(("finished", 45.0, _tau(0)), ("finished", 50.0, _tau(0.99))))
    assert holds is False and "45.0 >= 50.0 - 10" in detail


def test_rule_interior_argmax():
    rule = {"kind": "interior_argmax", "axis": "method.tau_base", "where": {"method.name": "byol"}}
    peak = _jobs(("finished", 40.0, _tau(0.9)), ("finished", 52.0, _tau(0.99)), ("finished", 51.0, _tau(0.99)),
                 ("finished", 45.0, _tau(0.999)), ("collapsed", 11.0, _tau(1.0)))
    holds, detail = _verdict(rule, peak)
    assert holds is True
    assert detail == ("kNN by tau_base (name=byol): 0.9: 40.0, 0.99: 51.5, 0.999: 45.0, 1.0: 11.0 [collapsed 1/1];"
                      " best tau_base=0.99 (interior)")
    edge = _jobs(("finished", 40.0, _tau(0.9)), ("finished", 45.0, _tau(0.99)), ("finished", 50.0, _tau(0.999)))
    assert _verdict(rule, edge) == (False, ("kNN by tau_base (name=byol): 0.9: 40.0, 0.99: 45.0, 0.999: 50.0;"
                                            " best tau_base=0.999 (at an end)"))
    assert _verdict(rule, edge[:2])[0] is None                                             # two values only


def test_rule_interior_argmin_for_lower_is_better_metrics():
    rule = {"kind": "interior_argmin", "axis": "method.tau_base"}
    valley = _jobs(("finished", 40.0, _tau(0.9)), ("finished", 30.0, _tau(0.99)), ("finished", 35.0, _tau(0.999)))
    holds, detail = _verdict(rule, valley)
    assert holds is True and detail.endswith("best tau_base=0.99 (interior)")
    slope = _jobs(("finished", 40.0, _tau(0.9)), ("finished", 30.0, _tau(0.99)), ("finished", 20.0, _tau(0.999)))
    assert _verdict(rule, slope)[0] is False
    tie = _jobs(("finished", 30.0, _tau(0.9)), ("finished", 30.0, _tau(0.99)), ("finished", 35.0, _tau(0.999)))
    assert _verdict(rule, tie)[0] is False                                                # not strictly better


def test_rule_larger_drop():
    rule = {"kind": "larger_drop", "axis": "augment.name", "base": "full", "ablated": "no_color",
            "compare": "method.name", "more": "simclr", "less": "byol"}

    def four(simclr_full, simclr_no_color, byol_full, byol_no_color):
        return _jobs(*[("finished", v, {"method": {"name": m}, "augment": {"name": a}})
                       for v, m, a in ((simclr_full, "simclr", "full"), (simclr_no_color, "simclr", "no_color"),
                                       (byol_full, "byol", "full"), (byol_no_color, "byol", "no_color"))
                       if v is not None])

    rows = ("augment.name",)
    holds, detail = _verdict(rule, four(60.0, 35.0, 55.0, 50.0), rows)
    assert holds is True
    assert detail == ("simclr: full 60.0 - no_color 35.0 = drop 25.0; byol: full 55.0 - no_color 50.0 = drop 5.0;"
                      " 25.0 > 5.0")
    holds, detail = _verdict(rule, four(60.0, 58.0, 55.0, 45.0), rows)
    assert holds is False and detail.endswith("; 2.0 <= 10.0")
    assert _verdict(rule, four(60.0, 35.0, 55.0, None), rows)[0] is None       # byol without colour not run


def test_unknown_rule_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown kind 'bigger'"):
        Study.from_block({"name": "s", "rows": ["a"], "rules": [{"kind": "bigger"}]})


# --- columns, files, figure, W&B -------------------------------------------------------------------
AUG_STUDY = {
    "name": "aug_ablation", "title": "BYOL Table 5: augmentations", "rows": ["augment.name"],
    "columns": ["method.name"], "metric": "linear_acc", "metric_label": "linear top-1 (%)",
    "rules": [{"kind": "larger_drop", "axis": "augment.name", "base": "full", "ablated": "no_color",
               "compare": "method.name", "more": "simclr", "less": "byol",
               "text": "removing colour hurts SimCLR more than BYOL"}],
}


def test_columns_split_the_table(tmp_path):
    records = []
    for method, full, no_color in (("simclr", 0.60, 0.35), ("byol", 0.55, 0.50)):
        for aug, v in (("full", full), ("no_color", no_color)):
            for seed in (0, 1):
                rec = _record(AUG_STUDY, "finished", v - 0.1 + seed * 0.01, seed, method__name=method,
                              augment__name=aug)
                records.append((rec, f"{method}-{aug}-{seed}"))
    ref = tmp_path / "ref.csv"
    ref.write_text("name,method.name,value,metric,source\nfull,simclr,66.6,ImageNet linear,BYOL Table 5\n"
                   "full,byol,72.5,ImageNet linear,BYOL Table 5\nno_color,byol,70.6,ImageNet linear,BYOL Table 5\n")
    report = build_report(records, reference=ref)
    # text values keep the reference table's (the paper's) order
    assert [c[0] for c in report.columns] == ["simclr", "byol"]
    assert [r[0] for r in report.rows] == ["full", "no_color"]
    assert report.cell(("full",), ("simclr",)).mean == pytest.approx(60.5)       # linear_acc + 0.1 in the record
    assert report.cell(("no_color",), ("byol",)).reference == 70.6
    assert report.cell(("no_color",), ("simclr",)).paper(100) == "-"
    assert report.verdicts[0].holds is True
    from ssl_bench.report.study import to_latex, to_markdown
    md = to_markdown(report)
    assert "| name | simclr: linear top-1 (%) | simclr: runs | simclr: paper | byol:" in md
    tex = to_latex(report)
    assert r"\multicolumn{3}{c}{simclr}" in tex and r"\cmidrule(lr){2-4}" in tex and "no\\_color" in tex


def test_cli_writes_every_file_and_exits_0_even_when_a_claim_fails(sweep, tmp_path, capsys):
    root, ref = sweep
    block = json.loads(json.dumps(STUDY))
    block["rules"].append({"kind": "less", "a": {"method.stop_grad": True}, "b": {"method.stop_grad": False},
                           "text": "a claim our numbers contradict"})
    for rec_path in root.rglob("record.json"):
        rec = json.loads(rec_path.read_text())
        rec["config"]["study"] = block
        rec_path.write_text(json.dumps(rec))
    assert main([str(root), "--reference", str(ref), "--format", "console", "--no-wandb"]) == 0
    out = capsys.readouterr().out
    assert "✓ without stop-gradient SimSiam collapses: holds." in out
    assert "✗ a claim our numbers contradict: does not hold. " in out and "49.0 >= 14.9" in out
    assert "4_sg=true_seed=2: failed: CUDA out of memory" in out
    report = root / "report"
    md = (report / "table.md").read_text()
    assert "| false | 14.9 ± 0.4 | collapsed 2/2 | 0.1 |" in md
    assert "| true | 49.0 ± 1.4 | finished 2/3, failed 1/3 | 67.7 |" in md and "`4_sg=true_seed=2`: failed" in md
    rows = list(csv.DictReader(io.StringIO((report / "table.csv").read_text())))
    assert [(r["method.stop_grad"], r["mean"], r["n"], r["failed"], r["reference"]) for r in rows] == [
        ("false", "14.9", "2", "0", "0.1"), ("true", "49.0", "2", "1", "67.7")]
    tex = (report / "table.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"14.9 $\pm$ 0.4" in tex
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    verdicts = json.loads((report / "verdicts.json").read_text())
    assert [v["holds"] for v in verdicts["verdicts"]] == [True, True, True, False]
    png = (report / "toy_stopgrad.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_cli_formats_and_errors(sweep, tmp_path, capsys):
    root, ref = sweep
    assert main([str(root), "--reference", str(ref), "--format", "csv", "--no-wandb",
                 "--out", str(tmp_path / "elsewhere")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("method.stop_grad,metric,mean,std,n,") and (tmp_path / "elsewhere" / "table.tex").is_file()
    assert main([str(root), "--reference", str(tmp_path / "missing.csv"), "--no-wandb"]) == 2
    assert "cannot read reference table" in capsys.readouterr().err
    assert main(["wandb://only/two"]) == 2
    assert "expected wandb://ENTITY/PROJECT/GROUP" in capsys.readouterr().err
    assert main([str(tmp_path / "empty")]) == 2
    assert "no record.json under" in capsys.readouterr().err


def test_wandb_report_run_written_offline(sweep, tmp_path, monkeypatch, capsys):
    root, ref = sweep
    isolate_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for rec_path in root.rglob("record.json"):      # the jobs logged to W&B: the report run is the default
        rec = json.loads(rec_path.read_text())
        rec["config"]["logger"]["name"] = "wandb"
        rec_path.write_text(json.dumps(rec))
    assert main([str(root), "--reference", str(ref), "--format", "md"]) == 0
    assert "W&B: offline report run" in capsys.readouterr().err
    runs = list((root / "report" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    info = json.loads(wandb_leet(runs[0], "--summary"))      # wandb's own reader
    assert info["state"] == "finished" and info["name"] == "report-toy_stopgrad"
    assert info["project"] == "ssl-bench-test"
    summary = info["summary"]
    assert summary["verdicts/holds"] == 3 and summary["verdict/1"]["outcome"] == "holds"
    assert summary["study/table"]["nrows"] == 2 and summary["study/plot"]["_type"] == "image-file"


def test_wandb_group_address_fails_clearly_offline(tmp_path, monkeypatch, capsys):
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(["wandb://me/ssl-bench/sweep-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssl-bench-report: cannot read wandb://me/ssl-bench/sweep-1: W&B is offline here")
    assert "\n" not in err


def test_sweep_without_study_keeps_the_run_table(tmp_path, capsys):
    _write(tmp_path, "0_method=simclr", _record({}, method__name="simclr"))
    assert main([str(tmp_path), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("| run | method | status |") and not (tmp_path / "report").exists()
    assert main([str(tmp_path), "--format", "tex"]) == 2
    assert "needs a study sweep" in capsys.readouterr().err


def test_reference_metric_picks_one_of_several_published_columns(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("method.masking,value,metric,source\nstatic,78.3,SQuAD 2.0 F1,T1\nstatic,84.3,MNLI-m,T1\n"
                   "dynamic,78.7,SQuAD 2.0 F1,T1\ndynamic,84.0,MNLI-m,T1\n")
    block = {"name": "m", "variant": "quick", "rows": ["method.masking"], "metric": "ppl",
             "reference_metric": "MNLI-m", "rules": []}
    records = [({"status": "finished", "seed": 0, "final": {"ppl": 250.0},
                 "config": {"study": block, "method": {"masking": m}}}, m) for m in ("static", "dynamic")]
    report = build_report(records, reference=ref)
    assert {c.row[0]: c.reference for c in report.cells.values()} == {"static": 84.3, "dynamic": 84.0}


def test_random_init_baseline_is_the_mean_of_the_jobs_init_evaluations():
    block = {"name": "s", "variant": "quick", "rows": ["method.stop_grad"], "metric": "knn_acc", "rules": []}
    records = [({"status": st, "seed": i, "final": {"knn_acc": v}, "init": {"knn_acc": init},
                 "config": {"study": block, "method": {"stop_grad": sg}}}, f"r{i}")
               for i, (st, v, init, sg) in enumerate([("finished", 0.5, 0.30, True), ("collapsed", 0.1, 0.34, False)])]
    report = build_report(records, reference=None)
    assert report.random_init == pytest.approx(32.0)
    from ssl_bench.report.study import to_markdown, verdicts_json

    assert "Random-init network (each job's evaluation before training): kNN 32.0." in to_markdown(report)
    assert verdicts_json(report)["random_init"] == pytest.approx(32.0)


def test_current_rules_come_from_the_study_definition():
    """A rule edited in conf/study/<name>.yaml after the sweep applies without rerunning it."""
    block = {"name": "byol_tau", "variant": "quick", "rows": ["method.tau_base"], "metric": "knn_acc", "rules": []}
    records = [({"status": "finished", "seed": 0, "final": {"knn_acc": v}, "config": {"study": block,
                 "method": {"tau_base": t}}}, f"r{t}") for t, v in ((0, 0.4), (0.9, 0.45), (0.99, 0.43), (1, 0.3))]
    assert build_report(records, rules="recorded").verdicts == []
    current = build_report(records, rules="current")
    assert [v.kind for v in current.verdicts] == ["less_or_status", "less", "interior_argmax"]
    assert current.verdicts[1].holds is True          # tau 1 (30) is more than 3 below 0.99 (43)
