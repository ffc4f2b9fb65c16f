"""A job as N processes (ranks): who launched them, the process group, and the few collectives the
run needs outside Lightning's training loop (the run-folder plan, the evaluations).

Launchers:

- ``ssl-bench trainer.devices=N`` on one node: ssl-bench starts the N-1 other local ranks itself, as
  ``python -m ssl_bench.worker <spec>`` processes that run exactly this job (its resolved config, its
  folder). Lightning's own launcher re-executes the whole command line, which under a Hydra multirun
  starts the sweep again in every child and composes a new timestamped folder: that is why the ranks
  are started here.
- ``torchrun --nproc_per_node=N ssl-bench ...`` and ``srun`` (SLURM, ``hydra.launcher.tasks_per_node``):
  every rank is started by the launcher and runs the app; the ranks are read from its environment
  (Lightning's ``TorchElasticEnvironment`` / ``SLURMEnvironment``).

Every rank initialises the process group before the Trainer exists (Lightning then uses it), so that
rank 0 alone can lock and plan the run folder and tell the others (``broadcast``), and the random-init
and final evaluations can be sharded over the ranks and gathered (``shard``, ``gather``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, ListConfig, OmegaConf

from ssl_bench.errors import ConfigError

# The differentiable collectives (SimCLR's gathered negatives, the CPU global BatchNorm) are
# torch.distributed.nn.functional's, which torch 2.x marks deprecated in favour of a private module.
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.", category=FutureWarning)

WORKER_ENV = "SSL_BENCH_WORKER"  # set in the local ranks ssl-bench starts
SPEC_DIR = ".ranks"  # <run dir>/.ranks/job.json: what the started ranks run


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in its job. ``launcher``: single | ssl-bench | torchrun | slurm."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    node_rank: int = 0
    launcher: str = "single"
    starts_others: bool = False  # rank 0 of ``ssl-bench trainer.devices=N``: it starts ranks 1..N-1

    @property
    def primary(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def devices_per_node(tc: Any) -> int:
    """``trainer.devices`` as a count (``auto`` / -1: every GPU, or one CPU process)."""
    devices = tc.devices
    gpu = str(tc.accelerator) in ("gpu", "cuda") or (str(tc.accelerator) == "auto" and torch.cuda.is_available())
    if isinstance(devices, (list, ListConfig)):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    if devices in ("auto", -1, "-1"):
        return max(torch.cuda.device_count(), 1) if gpu else 1
    return int(devices)


def detect(cfg: DictConfig) -> Ranks:
    """This process's ranks, from its launcher's environment; ``ConfigError`` when the launcher's
    world size does not match ``trainer.devices x trainer.num_nodes``."""
    tc = cfg.trainer
    want = devices_per_node(tc) * int(tc.num_nodes)
    if want > 1 and str(tc.strategy) in (
        "ddp_spawn",
        "ddp_fork",
        "ddp_notebook",
        "ddp_spawn_find_unused_parameters_true",
    ):
        raise ConfigError(f"trainer.strategy={tc.strategy}: ssl-bench starts its processes itself; use auto or ddp")
    env = os.environ
    if env.get(WORKER_ENV) or "TORCHELASTIC_RUN_ID" in env:
        ranks = Ranks(
            int(env["RANK"]),
            int(env["LOCAL_RANK"]),
            int(env["WORLD_SIZE"]),
            int(env.get("NODE_RANK", 0)),
            "ssl-bench" if env.get(WORKER_ENV) else "torchrun",
        )
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        ranks = Ranks(
            int(env["SLURM_PROCID"]),
            int(env.get("SLURM_LOCALID", 0)),
            int(env["SLURM_NTASKS"]),
            int(env.get("SLURM_NODEID", 0)),
            "slurm",
        )
    elif want > 1:
        if int(tc.num_nodes) > 1:
            raise ConfigError(
                f"trainer.num_nodes={tc.num_nodes} needs a launcher that starts one process per device "
                "on every node: srun (SLURM, hydra/launcher=slurm with hydra.launcher.nodes and "
                "tasks_per_node) or torchrun --nnodes"
            )
        return Ranks(0, 0, want, 0, "ssl-bench", starts_others=True)
    else:
        return Ranks()
    if ranks.world_size != want:
        raise ConfigError(
            f"{ranks.launcher} started {ranks.world_size} processes but trainer.devices x "
            f"trainer.num_nodes = {want}: set trainer.devices to the processes per node"
        )
    return ranks


def cluster_environment(ranks: Ranks) -> Any:
    """The Lightning cluster environment for these ranks (processes already started)."""
    from lightning_fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment

    if ranks.launcher == "torchrun":
        return TorchElasticEnvironment()
    if ranks.launcher == "slurm":
        return SLURMEnvironment(auto_requeue=False)  # the job requeues itself (ssl_bench.tracking.lifecycle)
    return LightningEnvironment()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RankLost(RuntimeError):
    """A rank of the job ended before the job did (its error is in its own output). The SIGTERM that
    ``LocalRanks`` sends this process when it sees the rank end is the job's own, not an outside
    signal: the job is recorded ``failed`` (naming the rank), never ``interrupted``."""

    own_signal = True


class LocalRanks:
    """The local ranks 1..N-1 that ssl-bench starts for a ``trainer.devices=N`` job; terminated with
    the job (also when this process dies: they get SIGTERM from the kernel). A rank that ends early
    ends the job: this process gets SIGTERM and ``lost`` says which rank and how."""

    def __init__(self, cfg: DictConfig, out_dir: Path, overrides: list[str], name: str, sweep_job: bool, ranks: Ranks):
        self.procs: list[subprocess.Popen] = []
        self.lost: str | None = None
        self._closing = False
        port = _free_port()
        base = {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(ranks.world_size),
            "NODE_RANK": "0",
        }
        os.environ.update(base, RANK="0", LOCAL_RANK="0")
        spec = Path(out_dir) / SPEC_DIR / "job.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(
            json.dumps(
                {
                    "config": OmegaConf.to_container(cfg, resolve=True),
                    "out_dir": str(out_dir),
                    "overrides": list(overrides),
                    "name": name,
                    "sweep_job": sweep_job,
                }
            )
        )
        for r in range(1, ranks.world_size):
            env = {**os.environ, **base, "RANK": str(r), "LOCAL_RANK": str(r), WORKER_ENV: "1"}
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ssl_bench.worker", str(spec)], env=env, preexec_fn=_die_with_parent
                )
            )
        self._watch = threading.Thread(target=self._watcher, daemon=True)
        self._watch.start()

    def ended_early(self) -> str | None:
        """``rank 1 ended early (signal 9)...`` when a started rank has ended with an error or a kill
        (not by SIGTERM / SIGINT, which reach the whole job and are its own outcome)."""
        for r, p in enumerate(self.procs, start=1):
            code = p.poll()
            if code not in (None, 0, 130, 143, -signal.SIGINT, -signal.SIGTERM):
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                return f"rank {r} ended early ({how}); its output says why"
        return None

    def _watcher(self) -> None:
        while not self._closing:
            lost = self.ended_early()
            if lost and not self._closing:
                self.lost = lost
                os.kill(os.getpid(), signal.SIGTERM)  # this rank may be waiting on it: end the job
                return
            time.sleep(0.2)

    def lost_rank(self, wait_s: float = 5.0) -> str | None:
        """After an error here: which rank ended early, if one did. The watcher stops signalling (the
        job already knows it ends), and a rank whose end this process noticed first (a collective call
        failing on its closed socket) gets ``wait_s`` to finish exiting before the answer is no."""
        self._closing = True
        deadline = time.monotonic() + wait_s
        while True:
            lost = self.lost or self.ended_early()
            ended = any(p.poll() is not None for p in self.procs)  # ended, but not early (0, SIGTERM)
            if lost or ended or time.monotonic() >= deadline:
                return lost
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signum)

    def close(self, timeout: float = 60.0) -> list[int | None]:
        """Wait for the ranks (killed after ``timeout`` s: a rank blocked in a collective call whose
        peer is gone does not get to run its signal handler); their exit codes."""
        self._closing = True
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes


def _die_with_parent() -> None:
    """In a started rank (before exec): SIGTERM when the process that started it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def init(ranks: Ranks, gpu: bool, timeout_s: float = 600.0) -> None:
    """The job's process group (gloo on CPU, nccl on GPU), before the Trainer."""
    if not ranks.distributed or dist.is_initialized():
        return
    if ranks.launcher == "slurm":
        env = cluster_environment(ranks)
        os.environ.setdefault("MASTER_ADDR", env.main_address)
        os.environ.setdefault("MASTER_PORT", str(env.main_port))
    if gpu:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(
        "nccl" if gpu else "gloo",
        init_method="env://",
        rank=ranks.rank,
        world_size=ranks.world_size,
        timeout=timedelta(seconds=timeout_s),
    )


def world() -> tuple[int, int]:
    """(rank, world size) of the process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a no-op in a single process)."""
    rank, size = world()
    if size == 1:
        return obj
    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def shard_range(n: int) -> range:
    """This rank's contiguous part of ``range(n)`` (rank order = data order when gathered)."""
    rank, size = world()
    lo, hi = n * rank // size, n * (rank + 1) // size
    return range(lo, hi)


def gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (first dimension may differ), concatenated in rank order, on every rank."""
    rank, size = world()
    if size == 1:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(sizes, n)
    top = int(max(s.item() for s in sizes))
    padded = torch.zeros((top, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def all_sum(t: torch.Tensor) -> torch.Tensor:
    if world()[1] > 1:
        dist.all_reduce(t)
    return t


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
