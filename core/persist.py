"""Saving and loading applications: formats come from the ``tapster_formats`` hook.

Every save is atomic: the bytes are produced first (a failure to serialize
never touches the disk), written to a temporary file in the target's
directory, flushed and fsynced, then renamed over the target. A crash at any
point leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from core.errors import PersistError

if TYPE_CHECKING:
    from core.hookspecs import FormatSpec

__all__ = ["save", "load", "saveApplication", "atomic_write", "format_for", "DEFAULT_FORMAT"]

DEFAULT_FORMAT = "pickle"
_SNIFF_BYTES = 512


def _formats() -> dict[str, "FormatSpec"]:
    from core.plugin import format_specs

    return format_specs()


def format_for(kind: str | None = None, filename: str | None = None) -> "FormatSpec":
    """The format called ``kind``, else the one whose extension ``filename`` has, else pickle."""
    formats = _formats()
    if kind is not None:
        try:
            return formats[kind]
        except KeyError:
            raise PersistError(f"unknown format {kind!r}: choose one of {', '.join(sorted(formats))}") from None
    if filename is not None:
        ext = os.path.splitext(filename)[1].lstrip(".")
        for spec in formats.values():
            if spec.extension == ext:
                return spec
    return formats[DEFAULT_FORMAT]


def atomic_write(filename: str, data: bytes) -> None:
    """Replace ``filename`` with ``data`` atomically (temp file, fsync, rename, fsync dir).

    A new file is created readable by its owner only (applications may hold
    secrets); an existing file keeps its permission bits.
    """
    directory = os.path.dirname(os.path.abspath(filename))
    try:
        mode = os.stat(filename).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    except OSError as e:
        raise PersistError(f"cannot write {filename}: {e.strerror}") from e
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(filename) + ".", suffix=".tmp")
    except OSError as e:
        raise PersistError(f"cannot write {filename}: {e.strerror} (check that {directory} exists and is writable)") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, filename)
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


def save(app: Any, filename: str, kind: str | None = None) -> str:
    """Serialize ``app`` in format ``kind`` (default: by extension) and write it atomically."""
    spec = format_for(kind, filename)
    data = spec.dump(app)  # raises before anything is written
    atomic_write(filename, data)
    try:
        app.persistStyle = spec.name
    except AttributeError:
        pass
    return filename


def saveApplication(app: Any, tag: str | None = None, filename: str | None = None) -> str:
    """Save as ``<name>-<tag>.<ext>`` (or ``<name>.<ext>``) in the app's own format, in the cwd."""
    spec = format_for(getattr(app, "persistStyle", None) or DEFAULT_FORMAT)
    if filename is None:
        base = app.name if not tag else f"{app.name}-{tag}"
        filename = f"{base}.{spec.extension}"
    return save(app, filename, spec.name)


def sniff(head: bytes, filename: str) -> "FormatSpec":
    """Recognise a file's format by its first bytes, then by its extension."""
    formats = _formats()
    for spec in formats.values():
        if spec.sniff(head):
            return spec
    ext = os.path.splitext(filename)[1].lstrip(".")
    for spec in formats.values():
        if spec.extension == ext:
            return spec
    raise PersistError(
        f"{filename} is not a saved application in any known format ({', '.join(sorted(formats))}); build it with mktap"
    )


def load(filename: str, kind: str | None = None) -> Any:
    """Load the application saved in ``filename``; ``kind`` forces a format."""
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PersistError(f"no such file: {filename} (build it with mktap, or check the path)") from None
    except IsADirectoryError:
        raise PersistError(f"{filename} is a directory, not an application file") from None
    except OSError as e:
        raise PersistError(f"cannot read {filename}: {e.strerror}") from e
    if not data:
        raise PersistError(f"{filename} is empty; rebuild it with mktap")
    spec = format_for(kind) if kind is not None else sniff(data[:_SNIFF_BYTES], filename)
    app = spec.load(data, filename)
    from core.service import IService

    if IService(app, None) is None:
        raise PersistError(f"{filename} holds a {type(app).__name__}, not an application; rebuild it with mktap")
    try:
        app.persistStyle = spec.name
    except AttributeError:
        pass
    return app
