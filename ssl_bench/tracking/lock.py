"""A run folder has one owner: an exclusive lock held for the whole run.

The lock is the kernel's advisory file lock (``flock``) on ``<folder>/.ssl_bench.lock``, so it dies
with its process whatever the death (``kill -9``, OOM, a node lost): a lock file left behind by a
dead process is stale and simply taken over. The file holds the owner (pid, host, start time,
command) for the message a second process gets. Where the file system has no ``flock`` (some network
mounts), the owner's pid is checked instead (a live pid on this host holds the lock; a dead one is
stale). Written here rather than with ``filelock`` because the owner has to be read back from the
same file atomically with the lock, and stale owners on file systems without ``flock`` detected.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ssl_bench.errors import RunFolderError

log = logging.getLogger("ssl_bench")

LOCK_FILE = ".ssl_bench.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_text(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process"
    cmd = " ".join(owner.get("argv") or [])
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('since')}" + (
        f" ({cmd[:120]})" if cmd else ""
    )


class RunLock:
    """``with RunLock(folder):`` ... the folder belongs to this process. ``RunFolderError`` at once
    (no waiting) when another live process holds it; ``enabled=False`` makes it a no-op (the
    non-zero ranks of a multi-process run share rank 0's folder)."""

    def __init__(self, folder: str | Path, enabled: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.enabled = enabled
        self._fd: int | None = None

    def read_owner(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        if not self.enabled or self._fd is not None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot write the run folder {self.folder}: {err.strerror or err}") from None
        try:
            self._lock(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "argv": sys.argv,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        os.fsync(fd)

    def _lock(self, fd: int) -> None:
        previous = self.read_owner()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(
                f"{self.folder} is in use by {_owner_text(self.read_owner())}: wait for it to end or use another folder"
            ) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            self._check_pid(previous)  # no flock on this file system: the owner's pid decides
            return
        if os.fstat(fd).st_ino != os.stat(self.path).st_ino:  # unlinked by its releasing owner meanwhile
            raise RunFolderError(f"{self.folder} changed hands while locking it: try again")
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.info(
                "run folder %s: taking over a stale lock of %s (no longer running)", self.folder, _owner_text(previous)
            )

    def _check_pid(self, owner: dict[str, Any]) -> None:
        pid, host = owner.get("pid"), owner.get("host")
        if not pid or pid == os.getpid():
            return
        if host != socket.gethostname():
            raise RunFolderError(
                f"{self.folder} is locked by {_owner_text(owner)} and this file system cannot tell "
                f"whether it still runs; if it does not, delete {self.path}"
            )
        if _alive(int(pid)):
            raise RunFolderError(
                f"{self.folder} is in use by {_owner_text(owner)}: wait for it to end or use another folder"
            )

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
