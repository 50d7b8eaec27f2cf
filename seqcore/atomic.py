"""Atomic file writes: a reader, or the next run after a crash, sees the old file or the new one, never a part.

Every file a user cares about (checkpoints, result tables, curves, plots) is written through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, which is flushed and fsynced and then
moved over the target with ``os.replace`` (atomic on POSIX and Windows within one file system). If the writer
raises (disk full, a bug, Ctrl-C) the temporary file is removed and the previous file is left as it was. If the
process is killed outright, a hidden ``.<name>.<host>-<pid>.<random>.tmp`` stays behind; the next write of the same
target on the same host removes those whose process no longer runs.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_text"]


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux reports it in /proc.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"


def _remove_stale(folder: Path, name: str, host: str) -> None:
    """Temporary files of ``name`` left by killed writers on this host (their process is gone)."""
    prefix = f".{name}.{host}-"
    for leftover in folder.glob(f".{name}.*.tmp"):
        rest = leftover.name[len(prefix):] if leftover.name.startswith(prefix) else ""
        pid = rest.split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                leftover.unlink()
        except PermissionError:  # alive, owned by someone else
            pass


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every platform or file system can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Context manager yielding a file object whose contents replace ``path`` only if the block succeeds.

    Args:
        path: the file to (re)place. Its folder must exist.
        mode: ``"wb"`` (default) or ``"w"`` (text; then ``encoding`` defaults to UTF-8).
        encoding: text encoding for ``mode="w"``.

    Raises:
        ValueError: ``mode`` is not ``"w"`` or ``"wb"``.
        FileNotFoundError: the folder of ``path`` does not exist.
        OSError: the write failed (for example the disk is full); the message names ``path`` and says that the
            previous file was left untouched. The original error is chained.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot write {target}: its folder {folder} does not exist")
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {target}: it is a directory")
    host = _host()
    _remove_stale(folder, target.name, host)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.{host}-{os.getpid()}.", suffix=".tmp")
    except OSError as err:
        raise OSError(err.errno, f"cannot write {target}: creating a file in {folder} failed ({err.strerror}); "
                                 f"the previous {target.name} was left untouched") from err
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would have (or the old file's).
        os.chmod(tmp, (target.stat().st_mode & 0o7777) if target.exists() else 0o666 & ~_umask())
        kwargs: dict[str, Any] = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            fd = -1
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise OSError(err.errno, f"writing {target} failed ({err.strerror or err}); the previous {target.name} "
                                     "was left untouched") from err
        raise
    _fsync_folder(folder)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
