"""SLURM: the ``hydra/launcher=slurm`` config, and tiny sweeps submitted through it to a real
one-node cluster (``slurm_cluster``: started for the session, or skipped with the reason)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ssl_bench.config import config_dir
from tests.conftest import TINY
from tests.slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

# Small jobs for a small machine: the cluster's node has only the cores of this one.
JOB = [
    "hydra.launcher.timeout_min=5",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.gpus_per_node=0",
    "trainer.num_threads=1",
    "hydra.sweep.subdir=${hydra.job.num}",
]  # the TINY overrides make too long a folder name


def _submit(sweep: Path, *overrides: str) -> list[str]:
    """The command line that submits a tiny sweep to SLURM and waits for it."""
    return [
        sys.executable,
        "-m",
        "ssl_bench.app",
        "-m",
        "hydra/launcher=slurm",
        *TINY,
        *JOB,
        f"hydra.sweep.dir={sweep}",
        *overrides,
    ]


def _sacct(job_id: str) -> list[tuple[str, str]]:
    """(job id, state) of every run of the job or of its array tasks, requeued ones included."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-D", "-P", "-o", "JobID,State", "-j", job_id],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [tuple(line.split("|", 1)) for line in out.splitlines() if line]


def _job_folders(sweep: Path) -> list[Path]:
    """submitit's per-job folders: <job id>, or <array job id> and one <array job id>_<task> per run."""
    return sorted(p for p in (sweep / ".submitit").glob("*") if p.is_dir())


def _wait_for(ready, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


@pytest.fixture
def sweep(tmp_path):
    """The sweep folder; whatever the test's outcome, none of its jobs stays queued or running."""
    path = tmp_path / "sweep"
    yield path
    job_ids = {folder.name.split("_")[0] for folder in _job_folders(path)}
    if job_ids:  # finished jobs make scancel complain, harmlessly
        subprocess.run(["scancel", *sorted(job_ids)], capture_output=True, timeout=30)


def test_slurm_launcher_builds_on_submitit_and_sets_the_resources():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.signal_delay_s=300"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.timeout_min, launcher.nodes, launcher.tasks_per_node) == (240, 1, 1)
    assert (launcher.gpus_per_node, launcher.cpus_per_task, launcher.mem_gb) == (1, 8, 32)
    assert launcher.partition is None and launcher.array_parallelism == 16
    # the warning signal is Lightning's requeue signal and follows signal_delay_s
    assert launcher.additional_parameters.signal == "USR1@300"
    # keys this config leaves alone keep the plugin's values
    assert OmegaConf.to_container(launcher)["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    assert launcher.max_num_timeout == 0 and launcher.qos is None


@pytest.mark.slurm
def test_sweep_runs_as_a_slurm_job_array(slurm_cluster, sweep, tmp_path):  # noqa: F811
    # a one-epoch tiny run is far from trained: no collapse verdict, the status is about the job
    proc = subprocess.run(
        _submit(sweep, "seed=0,1", "eval.collapse_threshold=0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'slurm' sweep output dir" in proc.stderr + proc.stdout

    records = [json.loads((sweep / str(num) / "record.json").read_text()) for num in (0, 1)]
    assert [r["status"] for r in records] == ["finished", "finished"]
    assert [r["seed"] for r in records] == [0, 1]

    # each run was an array task: Hydra's job id is SLURM's <array job id>_<task>, submitit's log
    # folder has that name, the job saw it, and accounting lists both tasks as completed
    job_ids = [OmegaConf.load(sweep / str(num) / ".hydra" / "hydra.yaml").hydra.job.id for num in (0, 1)]
    array_id = job_ids[0].split("_")[0]
    assert job_ids == [f"{array_id}_0", f"{array_id}_1"]
    for job_id in job_ids:
        log = (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
        assert f"JobEnvironment(job_id={job_id}," in log and "Job completed successfully" in log
        assert "SLURM auto-requeueing enabled" in log  # Lightning found the SLURM environment
    script = next((sweep / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --signal=USR1@120" in script and "#SBATCH --array=0-1%2" in script
    _wait_for(
        lambda: dict(_sacct(array_id)) == {job_id: "COMPLETED" for job_id in job_ids},
        "sacct to list both tasks as completed",
        30,
    )


@pytest.mark.slurm
def test_job_signalled_before_its_time_limit_is_requeued_and_resumes(slurm_cluster, sweep, tmp_path):  # noqa: F811
    """SIGUSR1 (what SLURM sends signal_delay_s before the limit): the job requeues itself, SLURM ends
    the attempt with SIGTERM (recorded as interrupted), the same job runs again and continues from
    last.ckpt with the same record and run id."""
    epochs = 40
    cmd = _submit(
        sweep,
        "seed=0",
        "resume=auto",
        "trainer.checkpoint=true",
        f"trainer.max_epochs={epochs}",
        "eval.every_n_epochs=5",
        "eval.initial=false",
        "eval.collapse_threshold=0",
    )
    with open(tmp_path / "submitter.log", "w+") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            run_dir = sweep / "0"
            _wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").is_file(), "the first epoch", 90)
            job_id = _job_folders(sweep)[0].name  # a sweep of one is a single job, no array
            subprocess.run(["scancel", "--signal=USR1", job_id], check=True, timeout=30)
            # SLURM holds a requeued job for two minutes (reason BeginTime); let it start at once
            _wait_for(
                lambda: (
                    "PENDING"
                    in subprocess.run(
                        ["squeue", "-h", "-o", "%T", "-j", job_id], capture_output=True, text=True, timeout=30
                    ).stdout
                ),
                "the job to be requeued",
                30,
            )
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        submitter = out.read()
    assert "Submitit 'slurm' sweep output dir" in submitter

    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert [e["epoch"] for e in record["epochs"]] == list(range(epochs))
    assert [a["status"] for a in record["attempts"]] == ["interrupted"] and record["attempt"] == 2
    assert not list(run_dir.glob("hpc_ckpt_*.ckpt"))  # no mid-epoch save: last.ckpt is what resumes
    log = (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert f"requeued SLURM job {job_id}" in log and "resuming from" in log
    assert log.count(f"JobEnvironment(job_id={job_id},") == 2  # the same job, started twice
    _wait_for(
        lambda: [state for _, state in _sacct(job_id)] == ["REQUEUED", "COMPLETED"],
        "sacct to list the requeued run and the completed one",
        30,
    )


@pytest.mark.slurm
def test_a_two_task_job_trains_as_ddp_and_a_requeue_continues_it(slurm_cluster, sweep, tmp_path):  # noqa: F811
    """hydra.launcher.tasks_per_node=2: each job is 2-rank DDP under srun (ranks from SLURM's
    environment); SIGUSR1 requeues it and the requeued 2-rank job continues the same record and
    W&B run."""
    epochs = 30
    cmd = _submit(
        sweep,
        "seed=0",
        "hydra.launcher.tasks_per_node=2",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "data.batch_size=32",
        "resume=auto",
        "trainer.checkpoint=true",
        f"trainer.max_epochs={epochs}",
        "eval.every_n_epochs=10",
        "eval.initial=false",
        "eval.collapse_threshold=0",
        "logger=wandb",
        "logger.mode=offline",
    )
    with open(tmp_path / "submitter.log", "w+") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            run_dir = sweep / "0"
            _wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").is_file(), "the first epoch", 120)
            first = json.loads((run_dir / "record.json").read_text())
            job_id = _job_folders(sweep)[0].name
            subprocess.run(["scancel", "--signal=USR1", job_id], check=True, timeout=30)
            _wait_for(
                lambda: (
                    "PENDING"
                    in subprocess.run(
                        ["squeue", "-h", "-o", "%T", "-j", job_id], capture_output=True, text=True, timeout=30
                    ).stdout
                ),
                "the job to be requeued",
                60,
            )
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
            assert proc.wait(timeout=240) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "finished" and record["distributed"] == {"world_size": 2, "launcher": "slurm"}
    assert [a["status"] for a in record["attempts"]] == ["interrupted"]
    assert record["run_id"] == first["run_id"] and record["wandb"]["id"] == first["wandb"]["id"]
    assert [e["epoch"] for e in record["epochs"]] == list(range(epochs))
    log = (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert f"requeued SLURM job {job_id}" in log and "resuming from" in log
    assert log.count(f"JobEnvironment(job_id={job_id},") == 2 and "global_rank=0(2)" in log
