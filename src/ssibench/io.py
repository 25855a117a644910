"""Atomic file writes and their leftovers.

Atomic writes. Every output is written to a temporary file ``.<stem>.<pid>.<random>.tmp<suffix>``
in the target folder and ``os.replace``-d onto the target, so an interrupted job never leaves a
file that looks complete. A write that fails (disk full, permissions, ...) removes its temporary
file and raises :class:`~ssibench.errors.WriteError` naming the target, the cause and the free
space. A hard-killed writer (SIGKILL, power loss) cannot clean up; the pid in the name lets the
next write of the same target remove the leftover once that process is gone
(:func:`sweep_temporaries`), while a live writer's temporary file is never touched.

Locks live in :mod:`ssibench.locks`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from ssibench.errors import WriteError

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "sweep_temporaries",
    "write_error",
]

#: Below this much free space (bytes) a write failure without an errno counts as a full disk
#: (file systems keep some slack, so "full" rarely means exactly 0 bytes free).
NEARLY_FULL_BYTES = 1_000_000

#: Unit of ``st_blocks`` (POSIX: 512-byte blocks, whatever the file system's block size).
STAT_BLOCK_BYTES = 512

#: Longest excerpt of an original error message quoted in a WriteError.
MAX_CAUSE_CHARS = 160

#: Lower-cased texts that only torch's zip writer (caffe2/serialize/inline_container.cc) puts in
#: its RuntimeErrors: ``PytorchStreamWriter failed writing file data/0: file write failed`` and
#: ``[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598`` (a short write on a
#: full disk). ``inline_container`` alone is not enough: the zip *reader* raises from that file
#: too, and a checkpoint loaded inside the block must keep its own error.
TORCH_WRITER_PATTERNS = ("pytorchstreamwriter", "unexpected pos")

#: Errnos whose fix is about access rights, not space.
_ACCESS_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def _temporary_pattern(target: Path) -> re.Pattern[str]:
    """Names of ``target``'s temporaries: ``.<stem>.<pid>.<hex8>.tmp<suffix>`` (group ``pid``).

    Neither the pid nor the random part contains a dot, so the temporaries of ``out.1.txt`` are
    never taken for those of ``out.txt``.
    """
    stem, suffix = re.escape(target.stem), re.escape(target.suffix)
    return re.compile(rf"\.{stem}\.(?P<pid>\d+)\.[0-9a-f]{{8}}\.tmp{suffix}")


def _is_own_leftover(path: Path) -> bool:
    """Whether ``path`` can be a temporary this user's writer left: a plain file this user owns.

    A symbolic link, a folder or another user's file with a matching name is never ours.
    """
    try:
        status = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_uid == os.getuid()


def _is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process on this host (``os.kill(pid, 0)``)."""
    if pid <= 0:  # 0 and negative values address process groups, never one writer
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OverflowError:  # larger than any pid
        return False
    return True


def sweep_temporaries(target: Path | str) -> list[Path]:
    """Remove the leftover temporaries of ``target`` whose writer is gone; return them.

    A temporary ``.<stem>.<pid>.<random>.tmp<suffix>`` in ``target``'s folder is removed when no
    process ``pid`` runs on this host (its writer was killed before it could clean up) and it is
    a regular file owned by this user. Nothing else is touched: temporaries of live processes (a
    concurrent writer, this process), of other targets, names without a pid (such as a user's
    ``.metrics.my_notes.tmp.csv``), links and other users' files. Each removal is reported on
    stderr.

    Pids are only meaningful on the host that wrote them: on a folder shared between hosts the
    same target must not be written from two hosts at once (the workflow never does).

    Args:
        target: the output file whose temporaries to sweep.

    Returns:
        The removed paths, sorted.
    """
    target = Path(target)
    pattern = _temporary_pattern(target)
    try:
        names = sorted(os.listdir(target.parent))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        path = target.parent / name
        if _is_alive(int(match.group("pid"))) or not _is_own_leftover(path):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # another job swept it first
            continue
        print(f"ssibench: removed leftover {path} of an interrupted write", file=sys.stderr)
        removed.append(path)
    return removed


def _create_temporary(target: Path) -> Path:
    """Create an empty, private (0600) temporary file for ``target`` and return its path."""
    while True:
        name = f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{target.suffix}"
        tmp = target.parent / name
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # 2**32 names per pid: practically never twice
            continue
        os.close(fd)
        return tmp


def _format_size(n_bytes: int) -> str:
    """``n_bytes`` in GB (≥ 1 GB) or MB, as ``df`` users read them: ``12.3 GB``, ``0.26 MB``."""
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.1f} GB"
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e6:.2f} MB"


def _free_bytes(folder: Path) -> int | None:
    """Free space for unprivileged users on ``folder``'s file system; None if unknown."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _shorten(message: str) -> str:
    """First line of ``message``, whitespace collapsed, at most ``MAX_CAUSE_CHARS`` characters."""
    lines = message.strip().splitlines()
    text = " ".join(lines[0].split()) if lines else ""
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"


def _is_write_failure(error: BaseException, tmp: Path | None) -> bool:
    """Whether ``error``, raised while writing ``tmp``, is a failed write rather than a bug.

    OSErrors are, except those about another file (an input read inside the block) and
    WriteErrors already explained. RuntimeErrors are only when they come from torch's file
    writer or name the temporary file; any other RuntimeError keeps its type and traceback.
    """
    if isinstance(error, WriteError):
        return False
    if isinstance(error, OSError):
        names = {str(tmp), tmp.name} if tmp is not None else set()
        other = [f for f in (error.filename, error.filename2) if f is not None]
        return not other or any(os.fsdecode(f) in names for f in other)
    if isinstance(error, RuntimeError):
        message = str(error)
        lowered = message.lower()
        if any(pattern in lowered for pattern in TORCH_WRITER_PATTERNS):
            return True
        return tmp is not None and tmp.name in message
    return False


def write_error(target: Path, error: OSError | RuntimeError, tmp: Path | None) -> WriteError:
    """Remove ``tmp`` and build the WriteError that explains why ``target`` was not written.

    The message: ``<target>: cannot write: <cause>; <free> free on <folder>; <fix>``, where the
    cause is ``os.strerror(errno)`` when the error has an errno, else its shortened message, and
    says "no space left on device" for ENOSPC or, without an errno, when less than
    ``max(partial file size, NEARLY_FULL_BYTES)`` was left free while the partial file existed.
    The free space is that of the file system once the partial file is gone.
    """
    folder = target.parent
    code = error.errno if isinstance(error, OSError) else None
    partial = allocated = 0
    if tmp is not None:
        with contextlib.suppress(OSError):
            status = tmp.stat()
            partial, allocated = status.st_size, status.st_blocks * STAT_BLOCK_BYTES
    free_before = _free_bytes(folder)
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    free = _free_bytes(folder)
    if free is not None and free_before is not None:
        # The failed writer (torch's zip writer, an h5py file) may still hold the unlinked file
        # open until the exception is gone; count its blocks as the free space they will be.
        free = max(free, free_before + allocated)
    cause = os.strerror(code) if code else _shorten(str(error)) or type(error).__name__
    full = code == errno.ENOSPC or (
        not code and free_before is not None and free_before < max(partial, NEARLY_FULL_BYTES)
    )
    if full and "no space left on device" not in cause.lower():
        cause = f"no space left on device ({cause})"
    free_text = "unknown space" if free is None else _format_size(free)
    if code in _ACCESS_ERRNOS:
        fix = f"check that you may write to {folder}, or point the workflow to a writable disk"
    else:
        fix = f"free space on {folder} or point the workflow to a larger disk"
    # One argument, so str() is the message alone (the CLI prints it as one line); errno is
    # still set for callers that test it.
    written = WriteError(f"{target}: cannot write: {cause}; {free_text} free on {folder}; {fix}")
    written.errno = code or errno.EIO
    return written


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` if the block succeeds.

    The temporary file ``.<stem>.<pid>.<random>.tmp<suffix>`` keeps the target's suffix (so h5py,
    numpy and pandas recognise the format). Leftovers of earlier, killed writers of ``target``
    are swept first (:func:`sweep_temporaries`). On any exception the temporary file is removed
    and ``target`` is left untouched; a failed write is re-raised as WriteError.

    Args:
        target: the file to write.

    Yields:
        The temporary path to write to.

    Raises:
        WriteError: when creating the temporary file, the block, or the final chmod and rename
            raise an OSError (other than one about another file), or a RuntimeError of torch's
            file writer; the message names ``target``, the cause (e.g. "No space left on
            device") and the free space of its file system, and the original error is chained.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(target)
        tmp = _create_temporary(target)
    except OSError as error:
        raise write_error(target, error, None) from error
    try:
        yield tmp
        # The temporary is created 0600; give outputs the usual mode so group members can read them
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    except (OSError, RuntimeError) as error:
        if not _is_write_failure(error, tmp):
            tmp.unlink(missing_ok=True)
            raise
        raise write_error(target, error, tmp) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(target: Path | str, text: str) -> None:
    """Write ``text`` to ``target`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
