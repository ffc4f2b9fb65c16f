"""One lifecycle for every job (pretraining and offline evaluation): lock, signals, status, record,
W&B close.

``Job`` is the context a job's body runs in::

    with Job(out_dir) as job:                    # the run folder is locked; SIGTERM / SIGINT handled
        record = job.track(RunRecord(...))       # finished whatever happens in the body
        job.logger = wb.build_logger(...)        # closed whatever happens in the body
        ... work ...
        job.status = "finished"                  # or collapsed / diverged: what the body concluded

On the way out the record is finished with the body's status (``failed`` when it raised,
``interrupted`` when a signal ended it) and written atomically, and the W&B run is finished with the
summary (``exit_code`` 0 for finished and collapsed jobs, else 1). SIGTERM (what schedulers send) and SIGINT
(Ctrl-C) raise ``Interrupted`` in the main thread: it is not an ``Exception``, so neither Lightning
(which turns ``KeyboardInterrupt`` into ``sys.exit(1)``) nor Hydra's job runner (which records
``Exception``s and goes on with the sweep) swallows it, and the command exits with 128 + the signal
number. Signals that arrive while the job is being closed are deferred until it is closed.

Under SLURM, SIGUSR1 (sent ``signal_delay_s`` before the time limit, ``#SBATCH --signal=USR1@N``)
requeues the job (``scontrol requeue``, from rank 0); SLURM then ends the running job with SIGTERM,
which records it as ``interrupted``, and the requeued job resumes from its last checkpoint
(``resume=auto``). Lightning's own handlers (a mid-epoch checkpoint, collectives inside the handler)
are replaced by these while training runs (``take_back_signals``, called by a callback at the start
of training): a signal handler that waits on the other ranks can deadlock a multi-process job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ssl_bench.tracking.lock import RunLock
from ssl_bench.tracking.record import RunRecord

log = logging.getLogger("ssl_bench")

HANDLED = (signal.SIGTERM, signal.SIGINT)
REQUEUE = signal.SIGUSR1  # SLURM's warning before the time limit (conf/hydra/launcher/slurm.yaml)


def slurm_job_id() -> str | None:
    """``<array job>_<task>`` or the job id of the SLURM job this process runs in (None outside SLURM)."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array is not None:
        return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def requeue(job_id: str) -> None:
    """Ask SLURM to requeue the job (rank 0 only: one request per job)."""
    import subprocess

    if int(os.environ.get("SLURM_PROCID", "0")) != 0:
        return
    result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        log.warning("SIGUSR1: requeued SLURM job %s; it resumes from its last checkpoint", job_id)
    else:
        log.warning("SIGUSR1: could not requeue SLURM job %s: %s", job_id, result.stderr.strip())


def end_worker_process(err: Interrupted) -> None:
    """In a launcher's worker process (joblib's loky workers keep running after a task raises): once
    the job has recorded its interruption, the process ends with the signal's exit code."""
    import multiprocessing
    import sys

    if multiprocessing.current_process().name.startswith("LokyProcess"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(err.exit_code)


class Interrupted(BaseException):
    """A job ended by a signal; ``exit_code`` = 128 + signal number (the shell's convention)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Signals:
    """SIGTERM / SIGINT -> ``Interrupted`` in this process's main thread; deferred while ``hold``
    is active. Forked children (data-loader workers) keep the default behaviour."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.previous: dict[int, Any] = {}
        self.pending: int | None = None
        self.holding = 0
        self.raised = False
        self.received: int | None = None  # the first SIGTERM / SIGINT, raised or not

    def handler(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:  # a forked worker inherited the handler: default behaviour
            if signum == signal.SIGINT:
                signal.default_int_handler(signum, frame)
            os._exit(128 + signum)
        if signum == REQUEUE:
            job = slurm_job_id()
            if job is not None:
                # SLURM's SIGTERM follows the requeue, often before ``scontrol`` returns: defer it
                # until the requeue is logged, then end this attempt with it
                with self.hold():
                    requeue(job)
                if self.pending is not None and not self.holding and not self.raised:
                    self.raised = True
                    raise Interrupted(self.pending)
            return
        self.received = self.received or signum
        if self.holding or self.raised:
            self.pending = self.pending or signum
            return
        self.raised = True
        raise Interrupted(signum)

    @property
    def signals(self) -> tuple[int, ...]:
        return (*HANDLED, REQUEUE) if slurm_job_id() is not None else HANDLED

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in self.signals:
            self.previous[sig] = signal.signal(sig, self.handler)
        return True

    def take_back(self) -> None:
        """Our handlers again, over whatever was installed since (Lightning's, during fit)."""
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                signal.signal(sig, self.handler)

    def restore(self) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.previous.clear()

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1


_active: _Signals | None = None


@contextmanager
def handle_signals() -> Iterator[_Signals | None]:
    """SIGTERM and SIGINT raise ``Interrupted`` while the block runs (nested blocks share one handler).
    A signal deferred by ``hold`` is raised when the outermost block ends."""
    global _active
    if _active is not None:
        yield _active
        return
    signals = _Signals()
    if not signals.install():
        yield None
        return
    _active = signals
    try:
        yield signals
    finally:
        _active = None
        signals.restore()
    if signals.pending is not None and not signals.raised:
        raise Interrupted(signals.pending)


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` that still run (Linux ``/proc``; none elsewhere; an ended child
    not yet reaped, a zombie, is not counted)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


@contextmanager
def forwarded_signals() -> Iterator[None]:
    """For the process that launches a sweep's jobs: SIGTERM / SIGINT are passed on to its child
    processes (the joblib launcher's workers, whose jobs then end as ``interrupted``) and end the
    launcher with ``Interrupted`` (exit code 128 + N). A job running in this process installs its
    own handlers meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    me = os.getpid()

    def forward(signum: int, frame: Any) -> None:
        children = _children(me)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)
        deadline = time.monotonic() + 60  # let their jobs record the interruption
        while set(children) & set(_children(me)) and time.monotonic() < deadline:
            time.sleep(0.1)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, forward) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def take_back_signals() -> None:
    """The job's signal handlers again, over the ones installed since (Lightning's, during fit)."""
    if _active is not None:
        _active.take_back()


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Signals wait until the block is done (closing a record, finishing a W&B run)."""
    if _active is None:
        yield
        return
    with _active.hold():
        yield


class Job:
    """Lock + signals + record + W&B close around a job's body (see the module docstring).
    ``primary=False`` (a non-zero rank of a multi-process run): no lock, no record on disk."""

    def __init__(
        self, out_dir: str | Path, primary: bool = True, summary: Callable[[RunRecord], dict[str, Any]] | None = None
    ):
        self.out_dir = Path(out_dir)
        self.lock = RunLock(self.out_dir, enabled=primary)
        self.primary = primary
        self.summary = summary or (lambda record: {})
        self.record: RunRecord | None = None
        self.logger: Any = False
        self.status: str | None = None  # set by the body when it concludes
        self.error: BaseException | None = None  # what made it conclude so (a divergence), if anything
        self.timings: dict[str, Any] = {}
        self._signals: Any = None
        self._signals_state: Any = None  # a job ended by an error while a signal was arriving: interrupted

    def track(self, record: RunRecord) -> RunRecord:
        """The record this job finishes (written now with status ``running``)."""
        self.record = record
        record.save()
        return record

    def __enter__(self) -> Job:
        self._signals = handle_signals()
        self._signals_state = self._signals.__enter__()
        try:
            self.lock.acquire()
        except BaseException as err:
            self._signals.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            with deferred_signals():
                self._close(exc)
        finally:
            self.lock.release()
            self._signals.__exit__(exc_type, exc, tb)
        return False

    def _close(self, exc: BaseException | None) -> None:
        received = getattr(self._signals_state, "received", None)
        own = getattr(exc, "own_signal", False)  # RankLost: the SIGTERM came from the job's own rank watcher
        signalled = isinstance(exc, Interrupted) or (exc is not None and not own and received)
        status = self.status if exc is None and self.status else ("interrupted" if signalled else "failed")
        if self.record is not None:
            self.record.finish(status, exc or self.error, **self.timings)
        if self.logger is not False:
            from ssl_bench.tracking import wandb as wb

            try:
                summary = {"status": status, **(self.summary(self.record) if self.record is not None else {})}
                wb.finish(self.logger, summary, exit_code=0 if status in ("finished", "collapsed") else 1)
            except Exception as err:  # closing tracking must never hide the job's own outcome
                log.warning("could not close the metric logger cleanly: %s", err)
