"""Multi-process runs through the command a user types (CPU, gloo): ``trainer.devices=2`` with the
default W&B logger gives one record, one W&B run, one summary, one export and one checkpoint; two
processes at batch B/2 (global BatchNorm, gathered negatives) train what one process at batch B
trains; the masked LM, a sweep and torchrun work the same way."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_bench.methods.registry import REGISTRY, image_methods
from ssl_bench.tracking.record import find_records, load_record
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
# TINY without its heads (each method's small heads are its registry entry's ``smoke``); BASE is SimCLR's
HEADLESS = [o for o in TINY if not o.startswith(("method.", "data.batch_size", "logger", "trainer.checkpoint"))] + [
    "trainer.max_epochs=2",
    "trainer.num_threads=1",
    "trainer.log_every_n_steps=1",
    "trainer.checkpoint=true",
]
BASE = [*HEADLESS, *REGISTRY["simclr"].smoke]
# 256 training images: 4 steps of 64 per epoch; two ranks see the same global batches
ONE = ["trainer.strategy=ddp", "trainer.devices=1", "data.batch_size=64"]
TWO = ["trainer.strategy=ddp", "trainer.devices=2", "data.batch_size=32"]
LOSS_RTOL = 5e-3  # epoch-mean training loss, 1 vs 2 processes (float rounding grows through AdamW)
FIRST_EPOCH_RTOL = 1e-3  # the first epoch: the same images, views and initial weights
EVAL_ATOL = 4 / 64  # final accuracies: a few of the 64 test images may flip


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(tmp_path / "home"),
        NETRC=str(tmp_path / "home" / ".netrc"),
        WANDB_SILENT="true",
        PYTHONPATH=str(ROOT),
        WANDB_CONFIG_DIR=str(tmp_path / "home" / "wandb"),
    )
    return env


def ssl_bench(
    tmp_path: Path, *args: str, cmd: tuple[str, ...] = (sys.executable, "-m", "ssl_bench.app"), timeout: int = 600
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, env=_env(tmp_path), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _structure(record: dict) -> dict:
    """The record's keys (and those of its metric sections), not its values."""
    return {
        k: sorted(v) if isinstance(v, dict) and k in ("init", "final", "best", "timings") else None
        for k, v in record.items()
    } | {"epoch_keys": sorted(record["epochs"][0])}


@pytest.fixture(scope="module")
def simclr(tmp_path_factory):
    """SimCLR: 1 process at batch 64 and 2 processes at 32 (the second with the default W&B logger)."""
    tmp = tmp_path_factory.mktemp("simclr")
    one = ssl_bench(tmp, *BASE, *ONE, "logger=none", "hydra.run.dir=one")
    two = ssl_bench(tmp, *BASE, *TWO, "logger=wandb", "hydra.run.dir=two")
    return tmp, one, two


def _close(a: dict, b: dict) -> None:
    assert [e["step"] for e in a["epochs"]] == [e["step"] for e in b["epochs"]]
    for ea, eb in zip(a["epochs"], b["epochs"]):
        assert eb["train/loss"] == pytest.approx(ea["train/loss"], rel=LOSS_RTOL), (ea["epoch"], ea, eb)
    for key in ("knn_acc", "linear_acc"):
        assert abs(a["final"][key] - b["final"][key]) <= EVAL_ATOL, key
    assert a["init"] == b["init"]  # the same random-init network, evaluated sharded


def test_two_processes_with_the_default_logger_make_one_of_everything(simclr):
    tmp, _, proc = simclr
    run = tmp / "two"
    assert find_records(tmp / "two") == [run / "record.json"]
    rec = load_record(run)
    assert rec["status"] in ("finished", "collapsed") and rec["distributed"] == {
        "world_size": 2,
        "launcher": "ssl-bench",
    }
    assert proc.stdout.count("ssl-bench run:") == 1  # one summary
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run
    assert rec["wandb"]["mode"] == "offline" and rec["wandb"]["id"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert (run / "backbone.pt").is_file() and rec["export"] == str(run / "backbone.pt")
    assert rec["timings"]["img_per_s"] > 0  # global images per second
    assert rec["config"]["data"]["batch_size"] == 32


def test_two_processes_at_half_the_batch_train_what_one_process_trains(simclr):
    tmp, _, _ = simclr
    one, two = load_record(tmp / "one"), load_record(tmp / "two")
    _close(one, two)
    assert _structure(one) == _structure(two)
    # the first epoch starts from the same weights on the same views: closer than the later ones
    assert two["epochs"][0]["train/loss"] == pytest.approx(one["epochs"][0]["train/loss"], rel=FIRST_EPOCH_RTOL)


# ~25 s each, so with make test-slow: the default run checks every method's distributed loss and
# gradients in-process (tests/test_distributed.py) and the CLI's DDP path on SimCLR above
@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in image_methods() if m != "simclr"])
def test_every_image_method_agrees_too(tmp_path, method):
    """Gathered keys (MoCo v3), the global cross-correlation (Barlow Twins), variance and covariance over
    the gathered batch (VICReg), the all-reduced center (DINO), global BatchNorm (all)."""
    small = [f"method={method}", *REGISTRY[method].smoke, "logger=none"]
    one_epoch = [o.replace("trainer.max_epochs=2", "trainer.max_epochs=1") for o in HEADLESS]  # 4 steps
    ssl_bench(tmp_path, *one_epoch, *ONE, *small, "hydra.run.dir=one")
    ssl_bench(tmp_path, *one_epoch, *TWO, *small, "hydra.run.dir=two")
    one, two = load_record(tmp_path / "one"), load_record(tmp_path / "two")
    _close(one, two)
    assert two["epochs"][0]["train/loss"] == pytest.approx(one["epochs"][0]["train/loss"], rel=FIRST_EPOCH_RTOL)


def test_masked_lm_with_two_processes(tmp_path):
    proc = ssl_bench(
        tmp_path,
        "method=mlm",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "trainer.num_threads=1",
        "trainer.enable_progress_bar=false",
        "data.batch_size=8",
        "eval.every_n_epochs=1",
        "logger=wandb",
        "hydra.run.dir=run",
    )
    rec = load_record(tmp_path / "run")
    assert rec["status"] == "finished" and rec["distributed"]["world_size"] == 2
    assert rec["final"]["ppl"] < rec["init"]["ppl"] and rec["final"]["masked_tokens"] == rec["init"]["masked_tokens"]
    assert proc.stdout.count("ssl-bench run:") == 1 and (tmp_path / "run" / "hf_export").is_dir()
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1


def test_a_sweep_of_two_process_jobs_logs_one_wandb_run_per_job(tmp_path):
    ssl_bench(tmp_path, "-m", *BASE, *TWO, "logger=wandb", "hydra.sweep.dir=sweep", "seed=0,1")
    records = find_records(tmp_path / "sweep")
    assert len(records) == 2
    for path in records:
        rec = load_record(path)
        assert rec["status"] in ("finished", "collapsed") and rec["distributed"]["world_size"] == 2
        assert len(list((path.parent / "wandb").glob("offline-run-*"))) == 1
    assert len({load_record(p)["wandb"]["id"] for p in records}) == 2


def test_torchrun_launches_the_app(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    proc = ssl_bench(
        tmp_path,
        *BASE,
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "data.batch_size=32",
        "logger=wandb",
        "hydra.run.dir=run",
        cmd=(torchrun, "--standalone", "--nproc_per_node=2", "-m", "ssl_bench.app"),
    )
    rec = load_record(tmp_path / "run")
    assert rec["status"] in ("finished", "collapsed") and rec["distributed"] == {
        "world_size": 2,
        "launcher": "torchrun",
    }
    assert proc.stdout.count("ssl-bench run:") == 1 and find_records(tmp_path) == [tmp_path / "run" / "record.json"]
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1


def _checkpointed(run: Path) -> int:
    try:
        return (load_record(run).get("checkpoint") or {}).get("epoch", -1) + 1
    except (OSError, ValueError):
        return 0


def _wait(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    import time

    t0 = time.time()
    while not predicate():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.1)


SLOW = [o.replace("data.train_size=256", "data.train_size=1024") for o in BASE if "max_epochs" not in o] + [
    "trainer.max_epochs=5",
    "eval.initial=false",
    "eval.every_n_epochs=5",
    "logger=none",
    *TWO,
]


@pytest.mark.slow  # a 2-rank run signalled and resumed (~50 s): make test-slow
def test_sigterm_ends_every_rank_and_resume_continues(tmp_path):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "ssl_bench.app", *SLOW, "hydra.run.dir=run"],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: _checkpointed(tmp_path / "run") >= 2, proc)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert workers and all(not Path(f"/proc/{w}").exists() for w in workers)  # no rank left behind
    rec = load_record(tmp_path / "run")
    assert rec["status"] == "interrupted" and rec["checkpoint"]["epoch"] >= 1
    ssl_bench(tmp_path, *SLOW, "hydra.run.dir=run", "resume=auto")
    done = load_record(tmp_path / "run")
    assert done["status"] in ("finished", "collapsed") and [a["status"] for a in done["attempts"]] == ["interrupted"]
    assert [e["epoch"] for e in done["epochs"]] == list(range(5))


def test_a_rank_killed_ends_the_job_as_failed_naming_it(tmp_path):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "ssl_bench.app", *SLOW, "hydra.run.dir=run"],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: _checkpointed(tmp_path / "run") >= 1, proc)
    (worker,) = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(worker), signal.SIGKILL)
    proc.communicate(timeout=180)
    assert proc.returncode != 0
    rec = load_record(tmp_path / "run")
    assert rec["status"] == "failed" and rec["error"]["type"] == "RankLost"
    assert rec["error"]["message"] == "rank 1 ended early (signal 9); its output says why"


def test_a_rank_whose_end_arrives_after_the_error_is_still_named():
    """The race behind a killed rank recorded as ``interrupted``: rank 0's collective call fails on the
    dead rank's closed socket before the rank can be reaped. ``lost_rank`` waits for it (and stops the
    watcher's SIGTERM); for an outside signal (``wait_s=0``) it does not wait."""
    import time

    from ssl_bench.distributed import LocalRanks

    def ranks(script: str) -> LocalRanks:
        r = object.__new__(LocalRanks)
        r.procs, r.lost, r._closing = [subprocess.Popen(["sh", "-c", script])], None, False
        return r

    late = ranks("sleep 0.5; kill -9 $$")
    assert late.ended_early() is None  # what the old check saw at the moment of the error
    t0 = time.monotonic()
    assert late.lost_rank(wait_s=10.0) == "rank 1 ended early (signal 9); its output says why"
    assert time.monotonic() - t0 < 5.0 and late._closing
    alive = ranks("sleep 3")
    assert alive.lost_rank(wait_s=0.0) is None
    alive.procs[0].kill()
    ended_by_sigterm = ranks("kill -TERM $$")
    ended_by_sigterm.procs[0].wait()
    assert ended_by_sigterm.lost_rank(wait_s=10.0) is None  # the job's own outcome, not a lost rank


# ~26 s, so with make test-slow: the default run checks each rank's share of the training files and of each
# evaluation split in-process (tests/test_stream.py)
@pytest.mark.slow
def test_two_processes_stream_an_image_folder(tmp_path):
    """``data.storage=stream`` under ``trainer.devices=2``: the ranks split the file list (as many global
    steps as one process at twice the batch), evaluations sharded and gathered once (the same figures)."""
    from tests.test_stream import write_folder

    write_folder(tmp_path / "imgs", n_per_class=32, size=32)  # 96 train / 96 test images
    base = [o for o in BASE if not o.startswith(("data.train_size", "data.test_size", "data.val_size"))] + [
        "data=imagefolder",
        f"data.root={tmp_path / 'imgs'}",
        "data.storage=stream",
        "data.num_workers=1",
        "data.val_size=32",
        "data.image_size=32",
        "data.cache_dir=null",
        "trainer.max_epochs=1",
        "logger=none",
        "augment.crop_min_scale=1.0",
        "augment.flip_p=0.0",
    ]
    ssl_bench(tmp_path, *base, "trainer.strategy=ddp", "trainer.devices=1", "data.batch_size=32", "hydra.run.dir=one")
    ssl_bench(tmp_path, *base, *TWO[:2], "data.batch_size=16", "hydra.run.dir=two")
    one, two = load_record(tmp_path / "one"), load_record(tmp_path / "two")
    assert {one["status"], two["status"]} <= {"finished", "collapsed"} and two["distributed"]["world_size"] == 2
    assert two["init"] == one["init"]  # the same 96 test images, each once
    assert two["epochs"][0]["step"] == one["epochs"][0]["step"] == 3
