"""Saving and loading applications: formats come from the ``tapster_formats`` hook.

Every save is atomic: the bytes are produced first (a failure to serialize
never touches the disk), written to a temporary file in the target's
directory, flushed and fsynced, then renamed over the target. A crash at any
point leaves either the old file or the new one, never half of one.

Any format can be encrypted with a passphrase (:mod:`tapster.core._persist.crypto`): the file
then starts with a ``TAPSTER-ENCRYPTED`` header naming its inner format, and
its conventional name puts an ``e`` before the extension (``.etap``,
``.etax``, ``.etas``, ``.eyaml``). A loaded encrypted application remembers
its passphrase in memory only (``_v_passphrase``, which is never saved), so
that :meth:`tapster.core.service.Application.save` and twistd's shutdown save write it
back encrypted.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from tapster.core.errors import PersistError

if TYPE_CHECKING:
    from tapster.core.hookspecs import FormatSpec

__all__ = [
    "save",
    "load",
    "dumps",
    "saveApplication",
    "atomic_write",
    "format_for",
    "is_encrypted",
    "is_encrypted_name",
    "named_format",
    "extension_for",
    "DEFAULT_FORMAT",
    "instance",
    "setstate",
    "runs_code",
]

DEFAULT_FORMAT = "pickle"
_SNIFF_BYTES = 512
#: Put before a format's extension to name an encrypted file of that format (``.tap`` → ``.etap``).
ENCRYPTED_PREFIX = "e"
#: Where a loaded encrypted application keeps its passphrase: ``_v_`` attributes are never saved.
PASSPHRASE_ATTRIBUTE = "_v_passphrase"


def _formats() -> dict[str, "FormatSpec"]:
    from tapster.core.plugin import format_specs

    return format_specs()


def named_format(filename: str) -> tuple["FormatSpec | None", bool]:
    """(format, encrypted) that ``filename``'s extension names: ``x.tax`` → xml; ``x.etax`` → xml, encrypted.

    ``(None, False)`` when the extension names no known format.
    """
    ext = os.path.splitext(filename)[1].lstrip(".")
    formats = _formats().values()
    for spec in formats:
        if spec.extension == ext:
            return spec, False
    for spec in formats:
        if ext == ENCRYPTED_PREFIX + spec.extension:
            return spec, True
    return None, False


def format_for(kind: str | None = None, filename: str | None = None) -> "FormatSpec":
    """The format called ``kind``, else the one whose extension ``filename`` has (``.etap`` too), else pickle."""
    formats = _formats()
    if kind is not None:
        try:
            return formats[kind]
        except KeyError:
            raise PersistError(f"unknown format {kind!r}: choose one of {', '.join(sorted(formats))}") from None
    if filename is not None:
        spec, _ = named_format(filename)
        if spec is not None:
            return spec
    return formats[DEFAULT_FORMAT]


def is_encrypted_name(filename: str) -> bool:
    """Whether ``filename`` has the extension of an encrypted file (``.etap``, ``.etax``...)."""
    return named_format(filename)[1]


def extension_for(spec: "FormatSpec", encrypted: bool = False) -> str:
    """The conventional extension (without the dot) of a file in format ``spec``."""
    return (ENCRYPTED_PREFIX if encrypted else "") + spec.extension


def is_encrypted(filename: str) -> bool:
    """Whether ``filename`` holds an encrypted application (by its header; False if unreadable)."""
    from tapster.core._persist import crypto as _crypto

    try:
        with open(filename, "rb") as f:
            head = f.read(len(_crypto.MAGIC) + 1)
    except OSError:
        return False
    return _crypto.is_encrypted(head)


def runs_code(filename: str, kind: str | None = None) -> bool:
    """Whether loading ``filename`` (as ``kind``, else as its name or content says) may run its code.

    False only when the format is known to be safe: forced by ``kind``, named
    by the extension, named by an encrypted file's header, or recognised from
    the first bytes. Anything unknown or unreadable counts as running code,
    so a caller that lowers its guard on False (twistd keeps the run directory
    off ``sys.path``) errs on the safe side.
    """
    if kind is not None:
        return not format_for(kind).safe
    named, _ = named_format(filename)
    if named is not None:
        return not named.safe
    try:
        with open(filename, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return True
    from tapster.core._persist import crypto as _crypto

    if _crypto.is_encrypted(head):
        try:
            inner = _crypto.read_header(head, filename)[0].format
            return not format_for(inner).safe
        except PersistError:
            return True
    try:
        return not sniff(head, filename).safe
    except PersistError:
        return True


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


def dumps(app: Any, kind: str | None = None, passphrase: str | bytes | None = None) -> bytes:
    """The bytes :func:`save` would write: ``app`` in format ``kind``, encrypted when a passphrase is given."""
    spec = format_for(kind)
    data = spec.dump(app)
    if passphrase is not None:
        from tapster.core._persist import crypto as _crypto

        data = _crypto.encrypt(data, passphrase, spec.name)
    return data


def save(app: Any, filename: str, kind: str | None = None, passphrase: str | bytes | None = None) -> str:
    """Serialize ``app`` in format ``kind`` (default: by extension) and write it atomically.

    With ``passphrase`` the file is encrypted (whatever its name); without one,
    a name such as ``x.etap`` that promises encryption is refused rather than
    written in clear. Nothing touches the disk until the whole file's bytes
    exist, so a failing serializer leaves the previous file as it was.
    """
    spec = format_for(kind, filename)
    if passphrase is None and is_encrypted_name(filename):
        raise PersistError(
            f"{filename} is named like an encrypted file: give a passphrase (mktap -e), "
            f"or name it .{spec.extension} to save it in clear"
        )
    data = dumps(app, spec.name, passphrase)  # raises before anything is written
    atomic_write(filename, data)
    _remember(app, spec.name, passphrase)
    return filename


def _remember(app: Any, style: str, passphrase: str | bytes | None) -> None:
    """Record the format and passphrase on ``app`` so that its next save writes it the same way."""
    try:
        app.persistStyle = style
        if passphrase is not None:
            setattr(app, PASSPHRASE_ATTRIBUTE, passphrase)
        elif PASSPHRASE_ATTRIBUTE in getattr(app, "__dict__", {}):
            delattr(app, PASSPHRASE_ATTRIBUTE)  # saved in clear on purpose: later saves stay clear
    except AttributeError:
        pass


def saveApplication(app: Any, tag: str | None = None, filename: str | None = None) -> str:
    """Save as ``<name>-<tag>.<ext>`` (or ``<name>.<ext>``) in the app's own format and encryption, in the cwd."""
    spec = format_for(getattr(app, "persistStyle", None) or DEFAULT_FORMAT)
    passphrase = getattr(app, PASSPHRASE_ATTRIBUTE, None)
    if filename is None:
        base = app.name if not tag else f"{app.name}-{tag}"
        filename = f"{base}.{extension_for(spec, passphrase is not None)}"
    return save(app, filename, spec.name, passphrase=passphrase)


def sniff(head: bytes, filename: str) -> "FormatSpec":
    """Recognise a file's format by its first bytes, then by its extension.

    The format the extension names is asked first, so that two formats whose
    sniffers both accept some text (a comment line starts both YAML and
    Python) resolve the way the file's name says.
    """
    formats = _formats()
    named, _ = named_format(filename)
    if named is not None and named.sniff(head):
        return named
    for spec in formats.values():
        if spec.sniff(head):
            return spec
    if named is not None:
        return named
    raise PersistError(
        f"{filename} is not a saved application in any known format ({', '.join(sorted(formats))}); build it with mktap"
    )


def load(filename: str, kind: str | None = None, passphrase: str | bytes | None = None) -> Any:
    """Load the application saved in ``filename``; ``kind`` forces a format.

    An encrypted file needs ``passphrase``; it is authenticated before a
    single byte is unpickled or parsed, and a wrong passphrase raises
    :class:`tapster.core.errors.BadPassphrase`. The loaded application keeps the
    passphrase in memory so that saving it again encrypts it again.
    """
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
    from tapster.core._persist import crypto as _crypto

    if _crypto.is_encrypted(data):
        if passphrase is None:
            raise PersistError(f"{filename} is encrypted: a passphrase is needed to load it")
        inner, data = _crypto.decrypt(data, passphrase, filename)  # authenticated before anything else
        spec = format_for(kind or inner)
    else:
        passphrase = None
        spec = format_for(kind) if kind is not None else sniff(data[:_SNIFF_BYTES], filename)
    app = spec.load(data, filename)
    from tapster.core.service import IService

    if IService(app, None) is None:
        raise PersistError(f"{filename} holds a {type(app).__name__}, not an application; rebuild it with mktap")
    _remember(app, spec.name, passphrase)
    return app


# -- what generated .tas files call (public: a .tas file imports them) ------------------


def instance(cls: type, state: Any = None, *, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
             listitems: list[Any] | None = None, dictitems: list[tuple[Any, Any]] | None = None) -> Any:
    """A new ``cls`` made without calling ``__init__`` (``cls.__new__(cls, *args, **kwargs)``), with ``state``.

    ``state`` is restored as pickle restores it: by the object's
    ``__setstate__`` if it has one, else into its ``__dict__`` (a
    ``(dict, slots)`` pair also sets slots).
    """
    obj = cls.__new__(cls, *args, **(kwargs or {}))
    return setstate(obj, state, listitems=listitems, dictitems=dictitems)


def setstate(obj: Any, state: Any = None, *, listitems: list[Any] | None = None,
             dictitems: list[tuple[Any, Any]] | None = None) -> Any:
    """Append ``listitems``, set ``dictitems``, then restore ``state`` (see :func:`instance`); returns ``obj``."""
    from tapster.core._persist.walker import apply_state

    return apply_state(obj, state, listitems, dictitems)
