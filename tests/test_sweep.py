"""A study sweep end to end: a job forced to fail is a row marked failed, the table and verdicts still
come out, and re-running the same command skips the finished jobs (resumable multirun)."""

import json
import subprocess
import sys

from ssl_bench.tracking.record import find_records, load_record
from tests.conftest import TINY

FAST = [o for o in TINY if not o.startswith(("logger", "backbone.model_kwargs"))] + [
    "logger=wandb",
    "logger.mode=offline",
    "hydra.launcher.n_jobs=2",
    "eval.initial=false",
]


def _sweep(sweep_dir, *extra):
    cmd = [
        sys.executable,
        "-m",
        "ssl_bench.app",
        "-m",
        "experiment=simsiam_stopgrad",
        f"hydra.sweep.dir={sweep_dir}",
        "seed=0,1",
        *FAST,
        *extra,
        # the second backbone is not a model: those jobs fail at start-up, the others finish
        "backbone.name=convnet,no_such_net",
        "+backbone.model_kwargs.widths=[8,16,16,32]",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_failed_job_is_reported_and_rerun_skips_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    first = _sweep(sweep)
    assert first.returncode == 0, first.stderr[-2000:]
    records = {p.parent.name: load_record(p) for p in find_records(sweep)}
    assert len(records) == 8  # 2 stop_grad x 2 seeds x 2 backbones
    failed = {k: r for k, r in records.items() if r["status"] == "failed"}
    assert len(failed) == 4 and all("no_such_net" in k for k in failed)
    assert all("no_such_net" in r["error"]["message"] for r in failed.values())
    done = {k: r for k, r in records.items() if r["status"] != "failed"}
    assert {r["status"] for r in done.values()} <= {"finished", "collapsed"}
    for r in done.values():  # one W&B group per sweep, a tag per swept value
        assert r["wandb"]["group"] == "simsiam_stopgrad-quick"
        tags = r["config"]["logger"]["tags"]
        assert "simsiam_stopgrad" in tags and any(t.startswith("method.stop_grad=") for t in tags)
        assert any(t.startswith("seed=") for t in tags)

    report = subprocess.run(
        [sys.executable, "-m", "ssl_bench.report.cli", str(sweep), "--no-wandb"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    table = (sweep / "report" / "table.md").read_text()
    assert "failed 2/4" in table  # each stop_grad row: 2 of its 4 jobs failed
    verdicts = json.loads((sweep / "report" / "verdicts.json").read_text())
    assert len(verdicts["verdicts"]) == 3

    stamps = {k: (sweep / k / "record.json").stat().st_mtime_ns for k in records}
    second = _sweep(sweep)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("skipping") == 4
    for k in records:
        changed = (sweep / k / "record.json").stat().st_mtime_ns != stamps[k]
        assert changed == (k in failed), k  # failed jobs ran again, finished ones did not


def test_a_changed_config_is_not_skipped(tmp_path):
    """Skipping needs the same resolved config: editing an experiment file (not the command line)
    makes its jobs run again, with the earlier result moved aside; failed jobs run again."""
    from omegaconf import OmegaConf

    from ssl_bench.runfolder import plan_run
    from tests.conftest import make_cfg

    cfg = make_cfg("method=simsiam")

    def folder(name, status, config):
        (tmp_path / name).mkdir()
        record = {
            "status": status,
            "overrides": ["seed=0"],
            "final": {"knn_acc": 0.5},
            "config": OmegaConf.to_container(config, resolve=True),
            "epochs": [{"epoch": 0}],
        }
        (tmp_path / name / "record.json").write_text(json.dumps(record))
        return tmp_path / name

    same = folder("same", "finished", make_cfg("method=simsiam", "logger=wandb"))  # logger keys do not count
    assert plan_run(cfg, same, sweep_job=True).action == "skip"
    changed = folder("changed", "finished", make_cfg("method=simsiam", "trainer.max_epochs=2"))
    plan = plan_run(cfg, changed, sweep_job=True)
    assert plan.action == "fresh" and load_record(plan.moved_to)["status"] == "finished"
    failed = folder("failed", "failed", cfg)
    assert plan_run(cfg, failed, sweep_job=True).action == "fresh"


def test_job_folder_names_put_the_swept_keys_first(monkeypatch):
    from ssl_bench.app import SWEPT_ENV, job_dirname

    monkeypatch.setenv(SWEPT_ENV, "seed,method.temperature")
    job = ["trainer.max_epochs=3", "method.temperature=0.5", "seed=1", "logger=none", "experiment=x", "resume=auto"]
    assert job_dirname(job) == "method.temperature=0.5,seed=1,trainer.max_epochs=3"
    long = job + [f"+data.k{i}=v{i}" for i in range(30)]
    name = job_dirname(long)
    assert name.startswith("method.temperature=0.5,seed=1,") and len(name) == 109  # 100 + "-" + hash
    assert job_dirname(long) == name and job_dirname(long[:-1]) != name
    monkeypatch.delenv(SWEPT_ENV)
    assert job_dirname(job) == "method.temperature=0.5,seed=1,trainer.max_epochs=3"  # none swept: sorted
    assert job_dirname([]) == "default"
