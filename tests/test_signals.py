"""Signal handling inside one process: SLURM's SIGUSR1 requeues the job, and the SIGTERM SLURM sends
while the requeue is being made still ends the attempt, after the requeue has been logged."""

from __future__ import annotations

import logging
import os
import signal
import stat
import time

import pytest

from ssl_bench.tracking.lifecycle import Interrupted, handle_signals


@pytest.fixture
def slurm_job(tmp_path, monkeypatch):
    """A fake ``scontrol`` that, like SLURM on a requeue, sends SIGTERM to the job before it returns."""
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol.args\nkill -TERM $PPID\nsleep 0.2\nexit 0\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{scontrol.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    return tmp_path


def test_sigusr1_requeues_and_the_sigterm_during_the_requeue_ends_the_attempt_after_it_is_logged(slurm_job, caplog):
    caplog.set_level(logging.WARNING, logger="ssl_bench")
    with pytest.raises(Interrupted) as err, handle_signals():
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(5)  # the handler interrupts this
    assert err.value.signum == signal.SIGTERM and err.value.exit_code == 143
    assert (slurm_job / "scontrol.args").read_text().split() == ["requeue", "4242"]
    assert "SIGUSR1: requeued SLURM job 4242" in caplog.text


def test_outside_slurm_sigusr1_is_not_handled(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    with handle_signals() as signals:
        assert signal.SIGUSR1 not in signals.signals
        assert signal.getsignal(signal.SIGTERM) == signals.handler
