"""Application files on disk: bounded reads of regular files, atomic writes, safe names.

A file handed to tapster may come from a stranger, and its *name* may be
chosen by one too (the application's name becomes the shutdown file's name),
so every path through here is defensive:

* :func:`read_file` reads a *regular file* only, at most a size limit: a
  symlink to ``/dev/zero`` or a FIFO is refused by its type (the file is
  opened non-blocking, so a FIFO with no writer cannot hang the open), and an
  oversized file by its size, before anything is read.
* :func:`atomic_write` writes a temporary file beside the target, fsyncs it
  and renames it over the target. The temporary file is locked (``flock``)
  while it is written, so the next save of the same file can tell a
  temporary left by a writer that died (its lock is gone) from one being
  written right now, and removes the dead ones.
* :func:`check_name` says whether a name may become part of a file name: no
  directory separators, no ``..``, nothing hidden, nothing unprintable.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time

from tapster.core.errors import PersistError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_SIZE_VARIABLE",
    "max_size",
    "read_file",
    "read_head",
    "atomic_write",
    "remove_stale_temporaries",
    "check_name",
    "NAME_LIMIT",
]

#: The largest application file tapster reads unless told otherwise (applications are small;
#: a megabyte-sized one is already unusual).
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: The environment variable that overrides :data:`DEFAULT_MAX_SIZE` (bytes).
MAX_SIZE_VARIABLE = "TAPSTER_MAX_FILE_SIZE"
#: The longest application name (it becomes a file name, and a process title).
NAME_LIMIT = 128
#: A temporary file younger than this is never removed by another writer: it may be one
#: whose writer has created it but not yet locked it.
_STALE_AFTER = 10.0


def max_size() -> int:
    """The size limit in force: ``$TAPSTER_MAX_FILE_SIZE`` if set (bytes), else the default."""
    text = os.environ.get(MAX_SIZE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_SIZE
    try:
        value = int(text)
    except ValueError:
        raise PersistError(f"{MAX_SIZE_VARIABLE}={text[:40]!r} is not a number of bytes") from None
    if value < 1:
        raise PersistError(f"{MAX_SIZE_VARIABLE} must be a positive number of bytes, not {value}")
    return value


def _open_regular(filename: str, what: str = "an application file") -> int:
    """A read-only descriptor on ``filename`` if it is a regular file (symlinks followed), else PersistError."""
    try:
        fd = os.open(filename, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PersistError(f"no such file: {filename} (build it with mktap, or check the path)") from None
    except IsADirectoryError:
        raise PersistError(f"{filename} is a directory, not {what}") from None
    except OSError as e:
        raise PersistError(f"cannot read {filename}: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise PersistError(f"{filename} is a directory, not {what}")
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                    else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                    else "not a regular file")
            raise PersistError(f"{filename} is {kind}, not {what}; tapster reads regular files only")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(filename: str, limit: int | None = None) -> bytes:
    """The whole of the regular file ``filename``, refused if larger than ``limit`` (default :func:`max_size`)."""
    limit = max_size() if limit is None else limit
    fd = _open_regular(filename)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise PersistError(
                f"{filename} is {size} bytes, more than the {limit} bytes tapster reads "
                f"(set {MAX_SIZE_VARIABLE} to allow larger application files)"
            )
        chunks: list[bytes] = []
        total = 0
        while True:  # read to the end, but never past the limit (the file may grow while read)
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise PersistError(f"{filename} grew past {limit} bytes while being read; refusing it")
        return b"".join(chunks)
    except OSError as e:
        raise PersistError(f"cannot read {filename}: {e.strerror or e}") from e
    finally:
        os.close(fd)


def read_head(filename: str, size: int) -> bytes | None:
    """The first ``size`` bytes of the regular file ``filename``; None if it is not one or cannot be read."""
    try:
        fd = _open_regular(filename)
    except PersistError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


# -- writing ---------------------------------------------------------------------------


def _temporary_prefix(filename: str) -> str:
    return "." + os.path.basename(filename) + "."


def remove_stale_temporaries(filename: str) -> list[str]:
    """Remove the temporaries of earlier saves of ``filename`` whose writers died; returns their names.

    A writer holds an exclusive ``flock`` on its temporary until it is renamed,
    and the kernel drops the lock when the writer dies, however it dies. A
    temporary that can be locked, and is older than a few seconds (so it is
    not one whose writer has not locked it yet), is left over from a crash.
    """
    directory = os.path.dirname(os.path.abspath(filename))
    prefix = _temporary_prefix(filename)
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < _STALE_AFTER:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # its writer is alive and writing
                raise
            try:
                os.unlink(path)
                removed.append(name)
            except OSError:
                pass
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def atomic_write(filename: str, data: bytes) -> None:
    """Replace ``filename`` with ``data`` atomically (temp file, fsync, rename, fsync dir).

    A new file is created readable by its owner only (applications may hold
    secrets); an existing file keeps its permission bits. Temporaries left by
    earlier writers that died mid-save are removed first.
    """
    directory = os.path.dirname(os.path.abspath(filename))
    try:
        mode = os.stat(filename).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    except OSError as e:
        raise PersistError(f"cannot write {filename}: {e.strerror}") from e
    remove_stale_temporaries(filename)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(filename), suffix=".tmp")
    except OSError as e:
        raise PersistError(
            f"cannot write {filename}: {e.strerror} (check that {directory} exists and is writable)"
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until we exit or die: tells other savers we are alive
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, filename)  # still locked: a cleaner never sees it unlocked under its old name
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise PersistError(f"cannot write {filename}: {e.strerror or e}") from e
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -- names -----------------------------------------------------------------------------


def check_name(name: object, what: str = "application name") -> str | None:
    """Why ``name`` may not become part of a file name, or None if it may.

    The application's name names its shutdown file (``<name>-shutdown.tap``)
    in the run directory, and a stranger's file chooses it: it must be one
    plain file name, not a path.
    """
    if not isinstance(name, str):
        return f"the {what} must be text, not {type(name).__name__}"
    if not name:
        return f"the {what} is empty"
    if len(name) > NAME_LIMIT:
        return f"the {what} is {len(name)} characters long; at most {NAME_LIMIT} are allowed"
    if "/" in name or "\\" in name:
        return f"the {what} {name[:60]!r} holds a path separator; it names a file in the run directory"
    if name.startswith("."):
        return f"the {what} {name[:60]!r} starts with a dot (it would name a hidden file, or a directory)"
    if not name.isprintable():
        return f"the {what} {name[:60]!r} holds unprintable characters"
    return None
