"""Advisory file locks shared by every process that writes a results folder or a cache.

A lock is an `flock` on a small file. The kernel drops it the moment its holder dies, even
by SIGKILL or the OOM killer, so a crashed run never leaves a stale lock behind; and it
works across the nodes of a cluster on a shared file system that supports flock (NFSv4,
Lustre, GPFS). The holder writes who it is into the file, so `snnbench status` can say
which host and process runs a cell.

The holder removes the file before it lets go. A waiter that wins the lock on a file that
was meanwhile removed (its inode no longer matches the path) starts again on the new file,
so two processes can never both believe they hold the same lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

POLL_S = 0.2


def holder_info(**extra: Any) -> dict[str, Any]:
    """Who holds a lock: host, pid and since when, plus `extra` (e.g. the cell's label)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), **extra}


class FileLock:
    """An exclusive lock on `path` (created on demand).

    `acquire(blocking=False)` returns False at once when another process holds it;
    `acquire(timeout=s)` gives up after s seconds. Not reentrant: one holder per object.
    """

    def __init__(self, path: Path, info: dict[str, Any] | None = None) -> None:
        self.path = path
        self.info = info
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    return False
                time.sleep(POLL_S)
                continue
            if self._same_file(fd):
                break
            os.close(fd)  # the previous holder removed it after we opened it: start again
        self._fd = fd
        if self.info is not None:
            payload = json.dumps(self.info).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, payload, 0)
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: see the module docstring
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def read_holder(path: Path) -> dict[str, Any] | None:
    """The holder of the lock at `path` if it is held now, else None. Never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            # A shared lock succeeds only when nobody holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 65536, 0).decode("utf-8", "replace")
            try:
                info = json.loads(text) if text else {}
            except json.JSONDecodeError:
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
