"""A real one-node SLURM cluster for the launcher tests: the session fixture ``slurm_cluster``.

Debian's ``slurm-wlm`` runs as root without systemd or cgroups, so a test can bring up a complete
scheduler on this host: munge (authentication), mariadb + slurmdbd (accounting: ``sacct``, and the
way submitit learns that a job was killed), slurmctld and slurmd, one node, one default partition.

The fixture reuses a cluster whose node already answers ``idle``. Otherwise it installs the
packages when they are missing (only as root with apt-get; ``SSL_BENCH_SLURM_INSTALL=0`` forbids
it), writes ``slurm.conf`` / ``slurmdbd.conf``, starts what is not running yet, waits for the node,
and at the end stops what it started, in reverse order. When any step fails the tests that use it
are skipped with the reason; they never pass without a scheduler.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
INSTALL_ENV = "SSL_BENCH_SLURM_INSTALL"  # "0": never install the packages, skip instead
CLUSTER_NAME = "ci"
CONF_DIR = Path("/etc/slurm")
PID_DIR = Path("/run/slurm")
LOG_DIR = Path("/var/log/slurm")
MUNGE_PID = Path("/run/munge/munged.pid")
MARK = "# one-node test cluster written by the ssl-bench test suite"  # first line of our configs

# Daemons and tools the cluster needs (Debian puts the daemons in /usr/sbin).
_TOOLS = (
    "sbatch",
    "sinfo",
    "sacct",
    "sacctmgr",
    "scontrol",
    "munged",
    "mariadbd",
    "mariadb-admin",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
)


class ClusterError(RuntimeError):
    """A step of bringing the cluster up failed; the message is the skip reason."""


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command, its output (stdout and stderr) read back as text. The output goes through a
    file, not a pipe: a daemon that forks off keeps no pipe open for us to wait on."""
    exe = _which(cmd[0]) or cmd[0]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            [exe, *cmd[1:]], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )
        out.seek(0)
        proc.stdout = out.read()
    return proc


def _answers(*cmd: str, timeout: float = 10) -> bool:
    try:
        return _run(*cmd, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _check(*cmd: str, timeout: float = 60) -> None:
    """Run a setup command; a failure becomes a ClusterError with its output."""
    try:
        proc = _run(*cmd, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as err:
        raise ClusterError(f"`{' '.join(cmd)}` could not run: {err}") from err
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-5:]
        raise ClusterError(f"`{' '.join(cmd)}` exited with {proc.returncode}: {' | '.join(tail)}")


def _wait_for(ready: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    """Poll ``ready`` until it holds; after ``timeout`` seconds fail, quoting the daemon's last log line."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            reason = f"{what} not ready after {timeout:.0f} s"
            if log is not None:
                try:
                    reason += f" ({log}: {log.read_text(errors='replace').strip().splitlines()[-1]})"
                except (OSError, IndexError):
                    reason += f" (no log in {log})"
            raise ClusterError(reason)
        time.sleep(0.2)


def node_states() -> list[str]:
    """The node states ``sinfo`` reports (``idle``, ``mixed``, ``down*``, ...); empty when no
    controller answers."""
    try:
        proc = _run("sinfo", "-h", "-o", "%T", timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return proc.stdout.split() if proc.returncode == 0 else []


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for a parent that never reaps it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_from(pidfile: Path) -> int | None:
    """The PID in ``pidfile`` if that process is alive."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def _usable_memory_mib() -> int:
    """RAM in MiB less 1 GiB for the system: slurmd drains a node that has less than it claims."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    return max(total - 1024, 512)


def slurm_conf(node: str, cpus: int, memory_mib: int) -> str:
    return f"""{MARK}
ClusterName={CLUSTER_NAME}
SlurmctldHost={node}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile={PID_DIR}/slurmctld.pid
SlurmdPidFile={PID_DIR}/slurmd.pid
SlurmctldLogFile={LOG_DIR}/slurmctld.log
SlurmdLogFile={LOG_DIR}/slurmd.log
# no cgroups: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# schedule a submitted job at once (the default waits up to 3 s)
SchedulerParameters=batch_sched_delay=0
# SIGKILL 2 s after SIGTERM: a cancelled submitit job (it ignores SIGTERM) frees the node quickly
KillWait=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mib} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def slurmdbd_conf() -> str:
    return f"""{MARK}
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile={PID_DIR}/slurmdbd.pid
LogFile={LOG_DIR}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""


@dataclass
class SlurmCluster:
    """The cluster the tests submit to, and the daemons this session started (in start order)."""

    node: str
    reused: bool = False
    started: list[tuple[str, int]] = field(default_factory=list)
    _mariadb: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop the daemons this session started, last started first: slurmd, slurmctld, slurmdbd,
        mariadb, munged."""
        for _name, pid in reversed(self.started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 20
            while _alive(pid) and time.monotonic() < deadline:
                if self._mariadb is not None and pid == self._mariadb.pid:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._mariadb.wait(timeout=0.2)  # our child: reap it
                else:
                    time.sleep(0.1)
        self.started.clear()


def _install_packages() -> None:
    if os.environ.get(INSTALL_ENV, "1") == "0":
        raise ClusterError(f"SLURM is not installed and {INSTALL_ENV}=0 forbids installing it")
    if os.geteuid() != 0 or _which("apt-get") is None:
        raise ClusterError(f"SLURM is not installed; installing {', '.join(PACKAGES)} needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *PACKAGES]
    try:
        proc = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:  # stale package lists: refresh once and try again
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300, env=env)
            proc = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
    except (OSError, subprocess.SubprocessError) as err:
        raise ClusterError(f"installing {', '.join(PACKAGES)} failed: {err}") from err
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ClusterError(f"apt-get install {' '.join(PACKAGES)} exited with {proc.returncode}: {tail}")


def _write_configs(node: str) -> None:
    """Write slurm.conf and slurmdbd.conf, but never over a configuration this suite did not write."""
    CONF_DIR.mkdir(parents=True, exist_ok=True)
    files = {
        CONF_DIR / "slurm.conf": slurm_conf(node, os.cpu_count() or 1, _usable_memory_mib()),
        CONF_DIR / "slurmdbd.conf": slurmdbd_conf(),
    }
    for path in files:
        if path.exists() and not path.read_text().startswith(MARK):
            raise ClusterError(f"{path} exists and was not written by this test suite; not overwriting it")
    for path, text in files.items():
        path.write_text(text)
    (CONF_DIR / "slurmdbd.conf").chmod(0o600)  # slurmdbd refuses a readable file (it holds a password)


def _start_daemon(cluster: SlurmCluster, name: str, pidfile: Path, cmd: list[str], log: Path) -> None:
    """Start a daemon that forks into the background and writes ``pidfile`` (unless it runs already)."""
    if _pid_from(pidfile) is not None:
        return
    _check(*cmd)
    pids: list[int | None] = []
    _wait_for(lambda: pids.append(_pid_from(pidfile)) or pids[-1] is not None, f"{name} (pid file {pidfile})", 15, log)
    cluster.started.append((name, pids[-1]))


def _start_mariadb(cluster: SlurmCluster) -> None:
    if not _answers("mariadb-admin", "ping"):
        run_dir = Path("/run/mysqld")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "mysql", "mysql")
        with open(LOG_DIR / "mariadbd.log", "ab") as log:  # mariadbd stays in the foreground
            proc = subprocess.Popen(
                [_which("mariadbd"), "--user=mysql", "--bind-address=127.0.0.1"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cluster._mariadb = proc
        cluster.started.append(("mariadbd", proc.pid))
        _wait_for(
            lambda: proc.poll() is None and _answers("mariadb-admin", "ping"), "mariadb", 30, LOG_DIR / "mariadbd.log"
        )
    # root logs in through the unix socket; slurmdbd uses slurm/slurm on its own database
    _check(
        "mariadb",
        "-e",
        "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm'; "
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;",
    )


def start_cluster() -> SlurmCluster:
    """Bring the cluster up (see the module docstring); raises ClusterError with the reason."""
    node = _short_hostname()
    # Ask sinfo only when a controller may answer: with none, it retries for about 10 s.
    conf = CONF_DIR / "slurm.conf"
    ours_down = conf.is_file() and conf.read_text().startswith(MARK) and _pid_from(PID_DIR / "slurmctld.pid") is None
    if not ours_down and "idle" in node_states():
        return SlurmCluster(node=node, reused=True)
    if os.geteuid() != 0:
        raise ClusterError("no SLURM cluster answers and starting one needs root")
    if any(_which(tool) is None for tool in _TOOLS):
        _install_packages()
        missing = [tool for tool in _TOOLS if _which(tool) is None]
        if missing:
            raise ClusterError(f"still missing after installing {', '.join(PACKAGES)}: {', '.join(missing)}")
    if not Path("/etc/munge/munge.key").is_file():
        raise ClusterError("/etc/munge/munge.key is missing (the munge package normally creates it)")
    _write_configs(node)
    for folder in ("/var/spool/slurmctld", "/var/spool/slurmd", LOG_DIR, PID_DIR, MUNGE_PID.parent):
        Path(folder).mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_PID.parent, "munge", "munge")

    cluster = SlurmCluster(node=node)
    try:
        _start_daemon(
            cluster,
            "munged",
            MUNGE_PID,
            ["su", "-s", "/bin/sh", "munge", "-c", _which("munged")],
            Path("/var/log/munge/munged.log"),
        )
        _start_mariadb(cluster)
        _start_daemon(cluster, "slurmdbd", PID_DIR / "slurmdbd.pid", ["slurmdbd"], LOG_DIR / "slurmdbd.log")
        _wait_for(lambda: _answers("sacctmgr", "-n", "show", "cluster"), "slurmdbd", 30, LOG_DIR / "slurmdbd.log")
        _start_daemon(cluster, "slurmctld", PID_DIR / "slurmctld.pid", ["slurmctld"], LOG_DIR / "slurmctld.log")
        _start_daemon(cluster, "slurmd", PID_DIR / "slurmd.pid", ["slurmd"], LOG_DIR / "slurmd.log")
        _wait_for(lambda: "idle" in node_states(), f"node {node} (sinfo idle)", 60, LOG_DIR / "slurmd.log")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node SLURM cluster (started for the session, or one that was already up)."""
    try:
        cluster = start_cluster()
    except ClusterError as err:
        pytest.skip(f"no SLURM cluster: {err}")
    yield cluster
    cluster.stop()
