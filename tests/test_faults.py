"""Fault injection with real processes: runs killed (``kill -9``), terminated (SIGTERM) and interrupted
(SIGINT) during training and evaluation, records written while killed, folders that cannot be
written, a full disk while checkpointing, concurrent sweeps into one folder, corrupt records and
checkpoints, a changed config on resume. In every case no finished result is lost, no record names
weights its metrics did not come from, and an interrupted run neither exits 0 nor says ``finished``.
Faults and pauses that need a known point inside the process (``patched``) are injected by code run
before the entry point, never by timing."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ssl_bench.tracking.record import load_record
from tests.conftest import TINY, wandb_leet

ROOT = Path(__file__).resolve().parents[1]
# a few seconds of training per epoch, so that a signal lands inside an epoch
SLOW = [o for o in TINY if not o.startswith(("trainer.max_epochs", "trainer.checkpoint", "data.train_size"))] + [
    "data.train_size=1024",
    "trainer.max_epochs=6",
    "trainer.checkpoint=true",
    "trainer.num_threads=1",
    "eval.initial=false",
    "eval.every_n_epochs=3",
]
RESULTS = ("finished", "collapsed")  # what a tiny run ends with
FAST = [o for o in TINY if not o.startswith("trainer.checkpoint")] + [
    "trainer.checkpoint=true",
    "trainer.num_threads=1",
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(tmp_path / "home"),
        NETRC=str(tmp_path / "home" / ".netrc"),
        WANDB_SILENT="true",
        WANDB_CONFIG_DIR=str(tmp_path / "home" / "wandb"),
        PYTHONPATH=str(ROOT),
    )
    return env


def cli(
    tmp_path: Path, *args: str, app: str = "ssl_bench.app", timeout: int = 300, prelude: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *(patched(prelude) if prelude else ["-m", app]), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(tmp_path),
        cwd=tmp_path,
    )


def start(tmp_path: Path, *args: str, app: str = "ssl_bench.app", prelude: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *(patched(prelude) if prelude else ["-m", app]), *args],
        stdin=subprocess.PIPE if prelude else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )


def patched(prelude: str) -> list[str]:
    """The arguments that run ``ssl-bench`` in a fresh interpreter after ``prelude`` (code that patches
    the package: a fault or a pause injected at a known point), for ``cli`` / ``start``."""
    return ["-c", f"{prelude}\nimport sys\nsys.argv[0] = 'ssl-bench'\nfrom ssl_bench.app import main\nmain()\n"]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    t0 = time.time()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) first: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def record_of(folder: Path) -> dict:
    try:
        return load_record(folder)
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    """A process that still runs (a zombie left for an init that does not reap is not running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def checkpointed(folder: Path) -> int:
    """How many epochs the checkpoint the record names holds (0: none yet)."""
    entry = record_of(folder).get("checkpoint") or {}
    return entry.get("epoch", -1) + 1


def assert_names_its_checkpoint(run: Path, rec: dict) -> None:
    """The record's checkpoint entry describes the file on disk (run id, epoch, step)."""
    entry = rec["checkpoint"]
    ckpt = torch.load(run / entry["path"], map_location="cpu", weights_only=True)
    assert (ckpt["ssl_bench"]["run_id"], ckpt["epoch"], ckpt["global_step"]) == (
        rec["run_id"],
        entry["epoch"],
        entry["step"],
    )


def one_line(proc: subprocess.CompletedProcess, prog: str = "ssl-bench") -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith(f"{prog}:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (W&B offline) that tests copy before they try to break it."""
    base = tmp_path_factory.mktemp("finished")
    proc = cli(base, *FAST, "logger=wandb", "logger.mode=offline", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base / "run"


def copy_run(src: Path, tmp_path: Path, name: str = "run") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


# --- a folder that already holds a run -----------------------------------------------------------
def test_a_fresh_run_into_a_finished_folder_is_refused_and_nothing_is_touched(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.suffix in (".json", ".ckpt")}
    msg = one_line(cli(tmp_path, *FAST, "hydra.run.dir=run"))
    status = load_record(run)["status"]
    assert f"already holds a {status} run" in msg and "resume=auto" in msg and "overwrite=true" in msg
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # never last-v1.ckpt


def test_resume_with_a_changed_method_on_a_finished_run_leaves_the_record_alone(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    before = (run / "record.json").read_bytes()
    msg = one_line(cli(tmp_path, *FAST, "hydra.run.dir=run", "resume=auto", "method=byol"))
    assert "another config" in msg and "method.name ('simclr' -> 'byol')" in msg
    assert (run / "record.json").read_bytes() == before


def test_resume_of_a_finished_run_with_the_same_config_is_a_no_op(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    before = (run / "record.json").read_bytes()
    proc = cli(tmp_path, *FAST, "hydra.run.dir=run", "resume=auto")
    status = load_record(run)["status"]
    assert proc.returncode == 0 and f"already holds this run, {status}" in proc.stdout, proc.stderr[-2000:]
    assert (run / "record.json").read_bytes() == before


def test_overwrite_moves_the_old_run_aside(finished, tmp_path):
    from ssl_bench.tracking.record import find_records

    run = copy_run(finished, tmp_path)
    old = load_record(run)
    proc = cli(tmp_path, *FAST, "hydra.run.dir=run", "overwrite=true", "seed=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = load_record(run)
    assert new["status"] in RESULTS and new["seed"] == 1 and new["run_id"] != old["run_id"]
    (aside,) = (run / "superseded").iterdir()
    assert load_record(aside) == old and (aside / "checkpoints" / "last.ckpt").is_file()
    assert find_records(tmp_path) == [run / "record.json"]  # reports see the new run only
    assert Path(new["superseded"]) == aside


# --- checkpoint identity and ssl-bench-eval ------------------------------------------------------
def test_record_names_the_checkpoint_its_metrics_came_from(finished):
    rec = load_record(finished)
    entry = rec["checkpoint"]
    assert entry["path"] == "checkpoints/last.ckpt" and entry["run_id"] == rec["run_id"]
    ckpt = torch.load(finished / entry["path"], map_location="cpu", weights_only=True)
    assert ckpt["ssl_bench"]["run_id"] == rec["run_id"]
    assert ckpt["global_step"] == entry["step"] == rec["evaluated_at"]["step"] == rec["epochs"][-1]["step"]
    assert ckpt["epoch"] == entry["epoch"] == rec["evaluated_at"]["epoch"]


def test_eval_of_a_copied_folder_never_loads_the_original_checkpoint(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    shutil.rmtree(run / "checkpoints")
    msg = one_line(cli(tmp_path, "source=run", "logger=none", app="ssl_bench.eval.app"), "ssl-bench-eval")
    assert "no checkpoint in" in msg and str(run) in msg


def test_eval_refuses_a_checkpoint_replaced_by_another_run(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["ssl_bench"]["run_id"] = "0123456789ab"
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    msg = one_line(cli(tmp_path, "source=run", "logger=none", app="ssl_bench.eval.app"), "ssl-bench-eval")
    assert "belongs to run 0123456789ab" in msg


def test_eval_takes_a_sweep_job_folder_unquoted(finished, tmp_path):
    job = tmp_path / "sweep" / "method.temperature=0.5,seed=0"
    shutil.copytree(finished, job)
    proc = cli(tmp_path, f"source={job}", "logger=none", "linear.epochs=2", app="ssl_bench.eval.app")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = (job / "eval").iterdir()
    assert load_record(out)["status"] == "finished"  # an evaluation has no collapse status


# --- signals and kills during training -----------------------------------------------------------
# SIGINT in a real process is with make test-slow (~21 s): the default run sends it in-process to every
# registered method (test_registry_cli.py: exit 130, record interrupted, resume continues)
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_signal_during_training_ends_interrupted_and_resume_finishes(tmp_path, sig, code):
    proc = start(tmp_path, *SLOW, "logger=wandb", "logger.mode=offline", "hydra.run.dir=run")
    run = tmp_path / "run"
    wait_for(lambda: checkpointed(run) >= 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    rec = load_record(run)
    assert rec["status"] == "interrupted" and rec["error"]["type"] == "Interrupted" and rec["final"] == {}
    assert_names_its_checkpoint(run, rec)  # the last complete checkpoint is kept
    assert rec["checkpoint"]["epoch"] >= 1
    info = json.loads(wandb_leet(rec["wandb"]["dir"], "--summary"))
    assert info["summary"]["status"] == "interrupted" and info["state"] != "finished"

    again = cli(tmp_path, *SLOW, "logger=wandb", "logger.mode=offline", "hydra.run.dir=run", "resume=auto")
    assert again.returncode == 0, again.stderr[-3000:]
    done = load_record(run)
    assert done["status"] in RESULTS and done["run_id"] == rec["run_id"] and done["wandb"]["id"] == rec["wandb"]["id"]
    assert [e["epoch"] for e in done["epochs"]] == list(range(6)) and done["final"]
    assert [a["status"] for a in done["attempts"]] == ["interrupted"] and done["attempt"] == 2
    assert done["checkpoint"]["step"] == done["evaluated_at"]["step"]


def test_kill_9_leaves_a_running_record_that_resume_continues(tmp_path):
    proc = start(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run")
    run = tmp_path / "run"
    wait_for(lambda: checkpointed(run) >= 2, proc)
    proc.kill()
    proc.wait()
    killed = load_record(run)
    assert killed["status"] == "running" and killed["pid"] == proc.pid  # honest: nobody closed it
    again = cli(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run", "resume=auto")
    assert again.returncode == 0, again.stderr[-3000:]
    done = load_record(run)
    assert done["status"] in RESULTS and done["pid"] != proc.pid
    (lost,) = done["attempts"]  # the killed attempt is named for what it was, never left "running"
    assert lost["status"] == "lost" and lost["pid"] == proc.pid and lost["ended_at"] is None
    assert f"pid {proc.pid} on {killed['host']} ended without closing its record" in lost["reason"]
    assert killed["checkpoint"]["saved_at"] in lost["reason"]
    assert [e["epoch"] for e in done["epochs"]] == list(range(6))


def test_sigterm_during_the_final_evaluation(tmp_path):
    args = [*SLOW, "trainer.max_epochs=2", "eval.linear_epochs=5000", "logger=none", "hydra.run.dir=run"]
    proc = start(tmp_path, *args)
    run = tmp_path / "run"
    for line in proc.stdout:  # Lightning says when fit ends
        if "Trainer.fit` stopped" in line:
            break
    proc.send_signal(signal.SIGTERM)  # inside the 5000-epoch linear probe
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    rec = load_record(run)
    assert rec["status"] == "interrupted" and rec["final"] == {} and rec["checkpoint"]["epoch"] == 1
    assert_names_its_checkpoint(run, rec)
    again = cli(tmp_path, *args, "resume=auto")
    assert again.returncode == 0, again.stderr[-3000:]
    done = load_record(run)
    assert done["status"] in RESULTS and done["final"]["knn_acc"] > 0 and len(done["epochs"]) == 2
    assert done["evaluated_at"]["step"] == done["checkpoint"]["step"] == rec["checkpoint"]["step"]


def test_corrupt_checkpoint_on_resume_is_one_line_and_recorded(tmp_path):
    proc = start(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run")
    run = tmp_path / "run"
    wait_for(lambda: checkpointed(run) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    msg = one_line(cli(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run", "resume=auto"))
    assert "unreadable" in msg and "overwrite=true" in msg
    rec = load_record(run)
    assert rec["status"] == "failed" and "unreadable" in rec["error"]["message"]


def test_resume_with_a_changed_config_lists_the_keys_and_touches_nothing(tmp_path):
    proc = start(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run")
    run = tmp_path / "run"
    wait_for(lambda: checkpointed(run) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    before = (run / "record.json").read_bytes()
    msg = one_line(
        cli(tmp_path, *SLOW, "logger=none", "hydra.run.dir=run", "resume=auto", "seed=3", "optim.base_lr=0.01")
    )
    assert "optim.base_lr (0.002 -> 0.01)" in msg and "seed (0 -> 3)" in msg
    assert (run / "record.json").read_bytes() == before


@pytest.mark.slow  # many kill -9 rounds (~75 s): make test-slow
def test_a_record_killed_while_being_written_stays_readable(tmp_path):
    """``kill -9`` at random moments of a process that rewrites a large record in a loop: every
    time the file on disk is one complete record."""
    script = (
        "import sys; from omegaconf import OmegaConf; from ssl_bench.tracking.record import RunRecord\n"
        "cfg = OmegaConf.create({'method': {'name': 'simclr'}, 'seed': 0, 'blob': list(range(200000))})\n"
        "rec = RunRecord(sys.argv[1], cfg, [], 'w')\n"
        "i = 0\n"
        "while True:\n    i += 1; rec['epochs'] = [{'epoch': i}]; rec.save(); print(i, flush=True)\n"
    )
    for delay in (0.3, 0.55, 0.8, 1.1, 1.4):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=_env(tmp_path)
        )
        proc.stdout.readline()  # at least one complete save
        time.sleep(delay)
        proc.kill()
        proc.wait()
        rec = load_record(tmp_path)
        assert len(rec["config"]["blob"]) == 200000 and rec["epochs"][0]["epoch"] >= 1


# the second checkpoint save finds the device full: part of the file written, then ENOSPC, as write(2) does
FULL_DISK_AT_SECOND_SAVE = """
import errno
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
real, saves = TorchCheckpointIO.save_checkpoint, []
def full_disk(self, checkpoint, path, storage_options=None):
    saves.append(path)
    if len(saves) < 2:
        return real(self, checkpoint, path, storage_options)
    with open(path, "wb") as fh:
        fh.write(b"x" * 4096)
    raise OSError(errno.ENOSPC, "No space left on device")
TorchCheckpointIO.save_checkpoint = full_disk
"""


def test_a_full_disk_while_writing_the_checkpoint_is_one_line_and_recorded_failed(tmp_path):
    args = [*FAST, "trainer.max_epochs=2", "eval.initial=false", "hydra.run.dir=run"]
    msg = one_line(cli(tmp_path, *args, prelude=FULL_DISK_AT_SECOND_SAVE))  # exit 2, no traceback
    run = tmp_path / "run"
    ckpt = (run / "checkpoints" / "last.ckpt").resolve()
    assert msg.startswith("ssl-bench: run folder: no space left on the device writing the checkpoint "), msg
    assert str(ckpt) in msg and re.search(r"\(\d+(\.\d)? (B|KiB|MiB|GiB|TiB) free there\)", msg), msg
    assert "the previous checkpoint is kept and resume=auto continues" in msg
    rec = load_record(run)
    assert rec["status"] == "failed" and rec["final"] == {}
    assert rec["error"]["type"] == "RunFolderError" and rec["error"]["message"] in msg
    assert rec["checkpoint"]["epoch"] == 0  # the complete first checkpoint, still named by the record
    assert_names_its_checkpoint(run, rec)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # the partial file removed

    again = cli(tmp_path, *args, "resume=auto")  # room again: the run continues from it
    assert again.returncode == 0, again.stderr[-3000:]
    done = load_record(run)
    assert done["status"] in RESULTS and [a["status"] for a in done["attempts"]] == ["failed"]
    assert [e["epoch"] for e in done["epochs"]] == [0, 1] and done["checkpoint"]["epoch"] == 1


# --- folders that cannot be written --------------------------------------------------------------
def _read_only(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("root without chattr: cannot make a folder read-only here")
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


def test_unwritable_checkpoint_folder_is_refused_before_any_work(tmp_path):
    undo = _read_only(tmp_path / "run" / "checkpoints")
    try:
        msg = one_line(cli(tmp_path, *FAST, "logger=none", "hydra.run.dir=run"))
    finally:
        undo()
    assert "cannot write to" in msg and "checkpoints" in msg
    assert not (tmp_path / "run" / "record.json").exists()


def test_unwritable_run_folder_is_one_line(tmp_path):
    undo = _read_only(tmp_path / "ro")
    try:
        msg = one_line(cli(tmp_path, *FAST, "logger=none", "hydra.run.dir=ro/run"))
    finally:
        undo()
    assert "run folder" in msg and "ro/run" in msg


# --- sweeps --------------------------------------------------------------------------------------
def job(sweep: Path, swept: str) -> Path:
    """A sweep job's folder: named by its overrides, the swept ones first (``seed=1,...``)."""
    found = [p for p in sweep.glob(f"{swept},*") if p.is_dir()] if sweep.is_dir() else []
    return found[0] if len(found) == 1 else sweep / f"{swept},?"


def test_sigterm_stops_a_sweep_non_zero_and_a_rerun_continues_it(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *SLOW, "logger=none", f"hydra.sweep.dir={sweep}", "seed=0,1,2"]
    proc = start(tmp_path, *args)
    wait_for(lambda: checkpointed(job(sweep, "seed=1")) >= 2, proc, timeout=400)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    status = {d: record_of(job(sweep, d)).get("status") for d in ("seed=0", "seed=1", "seed=2")}
    assert status["seed=0"] in RESULTS and status["seed=1"] == "interrupted" and status["seed=2"] is None
    interrupted = load_record(job(sweep, "seed=1"))
    again = cli(tmp_path, *args, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipping") == 1  # seed=0 skipped
    done = {d: load_record(job(sweep, d)) for d in ("seed=0", "seed=1", "seed=2")}
    assert all(r["status"] in RESULTS for r in done.values())
    assert [a["status"] for a in done["seed=1"]["attempts"]] == ["interrupted"]  # resumed, not restarted
    kept = interrupted["checkpoint"]["epoch"] + 1
    assert done["seed=1"]["epochs"][:kept] == interrupted["epochs"][:kept]


# the sweep stops once it holds job seed=0's folder (its lock taken), until a line comes on its stdin
HOLD_SEED_0 = """
import sys
from ssl_bench.tracking.lock import RunLock
real = RunLock.acquire
def acquire(self):
    real(self)
    if self.enabled and self.folder.name.startswith("seed=0,"):
        print("holding", self.folder, flush=True)
        sys.stdin.readline()
RunLock.acquire = acquire
"""


def test_two_identical_sweeps_into_one_folder_train_each_job_once(tmp_path):
    """The second sweep reaches job seed=0 while the first one holds it (stopped there): it leaves the
    job alone, saying who holds it, and trains seed=1; the first, let go, trains seed=0 and skips
    seed=1. Each job trains once, in one W&B run."""
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *SLOW,
        "trainer.max_epochs=3",
        "logger=wandb",
        "logger.mode=offline",
        f"hydra.sweep.dir={sweep}",
        "seed=0,1",
    ]
    first = start(tmp_path, *args, prelude=HOLD_SEED_0)
    held = next((line for line in first.stdout if line.startswith("holding ")), None)
    if held is None:
        first.wait(timeout=60)
        raise AssertionError(f"the first sweep ended (rc {first.returncode}) first: {first.stderr.read()[-3000:]}")
    assert Path(held.split(" ", 1)[1].strip()) == job(sweep, "seed=0")
    second = start(tmp_path, *args)
    out2, err2 = second.communicate(timeout=600)
    assert second.returncode == 0, err2[-3000:]
    assert f"{job(sweep, 'seed=0')} is in use by pid {first.pid}" in err2  # refused, not trained twice
    assert not (job(sweep, "seed=0") / "record.json").exists()  # still held: nothing written there yet
    out1, err1 = first.communicate("go\n", timeout=600)
    assert first.returncode == 0, err1[-3000:]
    assert f"skipping {job(sweep, 'seed=1')}: already" in out1 and "skipping" not in out2
    for name, by in (("seed=0", first.pid), ("seed=1", second.pid)):
        rec = load_record(job(sweep, name))
        assert rec["status"] in RESULTS and rec["attempt"] == 1 and rec["attempts"] == [] and rec["pid"] == by
        assert len(list((job(sweep, name) / "wandb").glob("offline-run-*"))) == 1  # one W&B run per job


# --- W&B never hangs -----------------------------------------------------------------------------
def test_an_unusable_wandb_key_falls_back_to_offline_quickly(tmp_path):
    env = _env(tmp_path)
    env["WANDB_API_KEY"] = "x" * 40
    t0 = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssl_bench.app",
            *TINY[:-1],
            "logger=wandb",
            "logger.init_timeout=5",
            "eval.initial=false",
            "hydra.run.dir=run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() - t0 < 120
    out = proc.stdout + proc.stderr
    assert "logging offline instead" in out and "wandb sync" in out
    assert load_record(tmp_path / "run")["wandb"]["mode"] == "offline"


@pytest.mark.slow  # a 4-job joblib sweep run twice (~90 s): make test-slow
def test_sigterm_stops_a_joblib_sweep_with_its_workers(tmp_path):
    """The quick studies' launcher: two jobs at a time in joblib's worker processes. SIGTERM to the
    sweep reaches the running jobs (recorded interrupted), no worker is left behind, exit code 143;
    the re-run resumes them and runs the rest."""
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *SLOW,
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",
        "seed=0,1,2,3",
    ]
    proc = start(tmp_path, *args)
    wait_for(lambda: checkpointed(sweep / "0") >= 2 and checkpointed(sweep / "1") >= 1, proc, timeout=400)
    workers = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-f", "-P", str(proc.pid), "loky"], capture_output=True, text=True
        ).stdout.split()
    ]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=180)
    assert proc.returncode == 143 and workers
    time.sleep(1)
    assert not [w for w in workers if alive(w)]  # the workers ended too
    assert [record_of(sweep / str(j)).get("status") for j in range(4)] == ["interrupted", "interrupted", None, None]
    again = cli(tmp_path, *args, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    done = [load_record(sweep / str(j)) for j in range(4)]
    assert all(r["status"] in RESULTS for r in done)
    assert [[a["status"] for a in r["attempts"]] for r in done] == [["interrupted"], ["interrupted"], [], []]
