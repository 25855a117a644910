"""Locks that touch only their own files: the lock of a run folder and private lock folders.

Run lock. :func:`run_lock` takes an exclusive, non-blocking ``fcntl.flock`` on ``<folder>/.lock``
so that two trainers never write the same run folder; the kernel drops the lock when the holder
exits or is killed, so a lock is never stale. A lock file is opened without following links and
must be a plain file with one name (:func:`try_flock`), and a folder of locks must be the user's
own (:func:`private_folder`): a planted link or folder never makes ssibench overwrite another file.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from ssibench.errors import RunLockedError, WriteError
from ssibench.io import write_error

__all__ = ["LOCK_NAME", "lock_holder", "private_folder", "run_lock", "try_flock"]

#: Name of the lock file in a run folder.
LOCK_NAME = ".lock"


def _refuse_unsafe_lock(path: Path, fd: int | None) -> None:
    """Raise WriteError unless ``path`` (open as ``fd``, None if opening it failed) is a plain file.

    A lock file is written (truncated, then the holder's note), so it must be the lock's own
    inode: a symbolic link (which ``O_NOFOLLOW`` refuses to open), a hard link to another file, a
    FIFO or a device would let whoever planted it make ssibench overwrite something else.
    """
    if fd is None:
        kind = "a symbolic link" + (f" (to {os.readlink(path)})" if path.is_symlink() else "")
    else:
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode) and status.st_nlink == 1:
            return
        os.close(fd)
        kind = (
            f"a hard link shared with {status.st_nlink - 1} other name(s)"
            if stat.S_ISREG(status.st_mode)
            else "not a regular file"
        )
    error = WriteError(
        f"{path}: the lock file is {kind}; ssibench writes its lock note into this file and never "
        f"follows or shares one (it would overwrite another file): remove it (rm {path}) and re-run"
    )
    error.errno = errno.ELOOP
    raise error


def try_flock(path: Path, note: str) -> int | None:
    """Take an exclusive, non-blocking ``flock`` on ``path``; its open descriptor, or None if held.

    The file is created (mode 0666 less the umask) if missing. It is opened with ``O_NOFOLLOW``
    and must be a regular file with one name (:func:`_refuse_unsafe_lock`), so a planted link
    never redirects the note onto another file. flock needs no write access, so a lock file
    another user created is opened read-only, and ``note`` (who holds the lock, for a person
    reading the file) is then not written. The note is written in place: the lock belongs to
    this inode, so the file must never be replaced or removed. The lock lasts until the
    descriptor is closed, which the kernel does when the process ends, also when it is killed.

    Args:
        path: the lock file.
        note: text written into the lock file once the lock is taken.

    Returns:
        The descriptor holding the lock (close it to release), or None when another open file
        holds the lock.

    Raises:
        WriteError: ``path`` is a symbolic link, a hard link or not a regular file.
        OSError: when the file cannot be opened or flock fails for another reason.
    """
    # O_NONBLOCK: opening a planted FIFO must not hang before the file type is checked.
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
            writable = True
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | flags)
            writable = False
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            _refuse_unsafe_lock(path, None)
        raise
    _refuse_unsafe_lock(path, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    if writable:
        os.ftruncate(fd, 0)
        os.write(fd, note.encode())
    return fd


def lock_holder(path: Path) -> dict[str, str]:
    """The ``key=value`` fields of the note in lock file ``path`` (empty when unreadable).

    Read with ``O_NOFOLLOW``: a link planted in place of a lock file is not followed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(4096).decode("utf-8", errors="replace")
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def private_folder(path: Path, what: str, fix: str, shared_sticky_ok: bool = False) -> Path:
    """Create ``path`` (mode 0700) or check it: a real folder of this user that no one else writes.

    A folder under a shared temporary directory can be made by anyone first; one owned by
    another user (or writable by others) would let them plant links or hold its locks for ever.
    With ``shared_sticky_ok`` a folder with the sticky bit (like ``/tmp``: nobody removes or
    renames another's files) passes whoever owns it: a shared lock folder that users set up on
    purpose, whose lock files are still opened without following links.

    Raises:
        WriteError: ``path`` cannot be created, is a link or a file, belongs to another user or
            is writable by group or others; the message says which and ends with ``fix``.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = os.lstat(path)
    except OSError as error:
        raise write_error(path, error, None) from error
    problem = None
    sticky = shared_sticky_ok and bool(status.st_mode & stat.S_ISVTX)
    if stat.S_ISLNK(status.st_mode):
        problem = "a symbolic link"
    elif not stat.S_ISDIR(status.st_mode):
        problem = "not a folder"
    elif sticky:
        pass
    elif status.st_uid != os.getuid():
        problem = f"owned by user id {status.st_uid}, not by you ({os.getuid()})"
    elif status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"writable by other users (mode {stat.S_IMODE(status.st_mode):o})"
    if problem is not None:
        error = WriteError(
            f"{path}: the {what} is {problem}; another user could plant files in it or hold its "
            f"locks: {fix}"
        )
        error.errno = errno.EACCES
        raise error
    return path


@contextlib.contextmanager
def run_lock(folder: Path | str, what: str = "trainer") -> Iterator[Path]:
    """Hold the exclusive lock of run folder ``folder`` for the block; fail at once if taken.

    Takes a non-blocking ``flock`` on ``<folder>/.lock`` (creating the folder) and writes
    ``pid=<pid> host=<host> started=<ISO time>`` into it. The lock is released on exit, and by
    the kernel when the process dies, so a killed trainer never blocks a rerun. The lock file
    itself stays (removing it would let a second process lock a new inode). Like every flock,
    it is only reliable on a local file system or one with working locks (not all NFS setups).

    Args:
        folder: the run folder.
        what: the kind of process, for the error message ("another trainer is writing ...").

    Yields:
        The lock file.

    Raises:
        RunLockedError: when another open file holds the lock; names the holder's pid, host and
            start time and how to proceed.
        WriteError: when the folder or the lock file cannot be created.
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    host = socket.gethostname()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = try_flock(path, f"pid={os.getpid()} host={host} started={started}\n")
    except WriteError:
        raise
    except OSError as error:
        raise write_error(path, error, None) from error
    if fd is None:
        holder = lock_holder(path)
        pid, other_host = holder.get("pid", "?"), holder.get("host", "?")
        where = "" if other_host in (host, "?") else f" on {other_host}"
        raise RunLockedError(
            f"{folder}: another {what} is writing this run (pid={pid}, host={other_host}, "
            f"since {holder.get('started', '?')}); wait for it to finish or stop it "
            f"(kill {pid}{where}), then re-run"
        )
    try:
        yield path
    finally:
        os.close(fd)
