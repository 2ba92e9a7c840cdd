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

An application's components (``app.setComponent(IFoo, foo)``, see
:class:`tapster.core.service.Componentized`) are kept in a table keyed by the
interfaces' dotted paths, so they are saved with the application: in pickle
and source files as any other object, in XML files when their classes are
declared safe (the interfaces themselves are never named as classes). A
component that holds process state (an open log file, a socket) is declared
*transient* with a true ``transientComponent`` attribute on its class or on
the interface: it is left out of every file, and the code that set it (a
``.tac``, a plugin) sets it again. A YAML file is a recipe of plugins and
their options, so it cannot express components: none is saved (with a
warning), and a YAML application starts without any.

:class:`IPersistable` is Twisted's ``sob.IPersistable``: ``setStyle(style)``
then ``save(tag=None, filename=None, passphrase=None)``, writing
``<name>-<tag>.<ext>``, ``<name>.<ext>`` without a tag, or ``filename``
exactly. An :class:`~tapster.core.service.Application` provides it itself;
:class:`Persistent` wraps any other object. Twisted's styles are tapster's
format names: ``"pickle"`` (``.tap``), ``"source"`` (``.tas``, Python source
instead of Twisted's AOT source) and ``"xml"`` (``.tax``, tapster's safe XML
instead of the long-gone marmalade); ``"yaml"`` and plugin formats work too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

from tapster.core._persist.files import MAX_SIZE_VARIABLE, atomic_write, check_name, read_file, read_head
from tapster.core.errors import PersistError

if TYPE_CHECKING:
    from tapster.core.hookspecs import FormatSpec
    from tapster.core.service import Application
    from tapster.core.service import _IPersistable as IPersistable
else:
    def __getattr__(name: str) -> object:
        # IPersistable is made with service's interface machinery; importing service here
        # at module level would make every import of persist pay for it.
        if name == "IPersistable":
            from tapster.core.service import _IPersistable

            return _IPersistable
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_T = TypeVar("_T")

__all__ = [
    "IPersistable",
    "Persistent",
    "save",
    "load",
    "loadValueFromFile",
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
    "check_name",
    "MAX_SIZE_VARIABLE",
]

DEFAULT_FORMAT = "pickle"
_SNIFF_BYTES = 512
#: Put before a format's extension to name an encrypted file of that format (``.tap`` → ``.etap``).
ENCRYPTED_PREFIX = "e"
#: Where a loaded encrypted application keeps its passphrase: ``_v_`` attributes are never saved.
PASSPHRASE_ATTRIBUTE = "_v_passphrase"


def _formats() -> dict[str, FormatSpec]:
    from tapster.core.plugin import format_specs

    return format_specs()


def named_format(filename: str) -> tuple[FormatSpec | None, bool]:
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


def format_for(kind: str | None = None, filename: str | None = None) -> FormatSpec:
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


def extension_for(spec: FormatSpec, encrypted: bool = False) -> str:
    """The conventional extension (without the dot) of a file in format ``spec``."""
    return (ENCRYPTED_PREFIX if encrypted else "") + spec.extension


def is_encrypted(filename: str) -> bool:
    """Whether ``filename`` holds an encrypted application (by its header; False if unreadable)."""
    from tapster.core._persist import crypto as _crypto

    head = read_head(filename, len(_crypto.MAGIC) + 1)
    return head is not None and _crypto.is_encrypted(head)


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
    head = read_head(filename, _SNIFF_BYTES)
    if head is None:
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


def dumps(app: Application, kind: str | None = None, passphrase: str | bytes | None = None) -> bytes:
    """The bytes :func:`save` would write: ``app`` in format ``kind``, encrypted when a passphrase is given."""
    spec = format_for(kind)
    if spec.name == "yaml" and getattr(app, "__dict__", {}).get("_adapterCache"):
        import logging

        logging.getLogger("tapster.persist").warning(
            "the components of %r are not saved: a YAML recipe holds plugins and their options only", app)
    data = spec.dump(app)
    if passphrase is not None:
        from tapster.core._persist import crypto as _crypto

        data = _crypto.encrypt(data, passphrase, spec.name)
    return data


def save(app: Application, filename: str, kind: str | None = None, passphrase: str | bytes | None = None) -> str:
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


def _remember(app: Application, style: str, passphrase: str | bytes | None) -> None:
    """Record the format and passphrase on ``app`` so that its next save writes it the same way."""
    try:
        app.persistStyle = style
        if passphrase is not None:
            setattr(app, PASSPHRASE_ATTRIBUTE, passphrase)
        elif PASSPHRASE_ATTRIBUTE in getattr(app, "__dict__", {}):
            delattr(app, PASSPHRASE_ATTRIBUTE)  # saved in clear on purpose: later saves stay clear
    except AttributeError:
        pass


def saveApplication(app: Application, tag: str | None = None, filename: str | None = None,
                    passphrase: str | bytes | None = None) -> str:
    """Save as ``<name>-<tag>.<ext>`` (or ``<name>.<ext>``) in the app's own format and encryption, in the cwd.

    Without ``filename`` the name and the tag must each be a plain file name
    (no directory, nothing hidden): a name from a stranger's file, or a tag
    typed into the console, never writes outside the run directory. With
    ``filename`` that exact name is written, in the app's format whatever its
    extension (as Twisted's ``Persistent.save``). ``passphrase`` encrypts the
    file; without one, the passphrase the app was loaded or last saved with.
    """
    spec = format_for(getattr(app, "persistStyle", None) or DEFAULT_FORMAT)
    if passphrase is None:
        passphrase = getattr(app, PASSPHRASE_ATTRIBUTE, None)
    if filename is None:
        filename = _conventional_name(getattr(app, "name", None), tag, spec, passphrase is not None)
    return save(app, filename, spec.name, passphrase=passphrase)


def _conventional_name(name: object, tag: str | None, spec: FormatSpec, encrypted: bool) -> str:
    """Twisted's naming rule: ``<name>-<tag>.<ext>``, or ``<name>.<ext>`` without a tag; both plain file names."""
    problem = check_name(name)
    if problem is None and tag:
        problem = check_name(tag, "tag")
    if problem is not None:
        raise PersistError(f"cannot save the application: {problem}")
    base = f"{name}-{tag}" if tag else f"{name}"
    return f"{base}.{extension_for(spec, encrypted)}"


class Persistent:
    """Twisted's ``sob.Persistent``: saves ``original`` under ``name`` in a chosen style.

    ``IPersistable(app)`` returns one bound to the application, as Twisted's
    does (``.original`` is the application, ``.name`` its name, ``.style``
    its format); ``app.setStyle``/``app.save`` are the same operations on the
    application itself. The style lives on ``original`` as ``persistStyle``
    when it takes the attribute, so the wrapper, the application and
    twistd's shutdown save always agree.
    """

    def __init__(self, original: Any, name: str) -> None:
        self.original = original
        self.name = name
        self._style = getattr(original, "persistStyle", None) or DEFAULT_FORMAT

    @property
    def style(self) -> str:
        """The format of the next :meth:`save` (Twisted's name)."""
        style: str = getattr(self.original, "persistStyle", None) or self._style
        return style

    def setStyle(self, style: str) -> None:
        """``"pickle"``, ``"source"``, ``"xml"``, ``"yaml"`` or a plugin's format (PersistError otherwise)."""
        self._style = format_for(style).name
        try:
            self.original.persistStyle = self._style
        except AttributeError:
            pass

    def save(self, tag: str | None = None, filename: str | None = None,
             passphrase: str | bytes | None = None) -> str:
        """Write ``<name>-<tag>.<ext>``, ``<name>.<ext>`` or ``filename`` atomically; returns the path.

        Without ``passphrase``, an original loaded from an encrypted file is
        saved encrypted again (with the passphrase it was opened with).
        """
        spec = format_for(self.style)
        if passphrase is None:
            passphrase = getattr(self.original, PASSPHRASE_ATTRIBUTE, None)
        if filename is None:
            filename = _conventional_name(self.name, tag, spec, passphrase is not None)
        return save(self.original, filename, spec.name, passphrase=passphrase)


def sniff(head: bytes, filename: str) -> FormatSpec:
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


def load(filename: str, kind: str | None = None, passphrase: str | bytes | None = None,
         max_size: int | None = None) -> Application:
    """Load the application saved in ``filename``; ``kind`` forces a format.

    Only a regular file is read, at most ``max_size`` bytes (default 64 MiB,
    or ``$TAPSTER_MAX_FILE_SIZE``). A file whose name says a safe format
    (``.tax``, ``.yaml``, ``.etax``...) is loaded by that format only, never by
    a code-running one because of what its bytes look like or what an
    encrypted file's header claims. An encrypted file needs ``passphrase``; it
    is authenticated before a single byte is unpickled or parsed, and a wrong
    passphrase raises :class:`tapster.core.errors.BadPassphrase`. The loaded
    application keeps the passphrase in memory so that saving it again
    encrypts it again. Its name must be a plain file name (it names the
    shutdown file).
    """
    data = read_file(filename, max_size)
    if not data:
        raise PersistError(f"{filename} is empty; rebuild it with mktap")
    from tapster.core._persist import crypto as _crypto

    named, named_encrypted = named_format(filename)
    if _crypto.is_encrypted(data):
        if passphrase is None:
            raise PersistError(f"{filename} is encrypted: a passphrase is needed to load it")
        header = _crypto.read_header(data, filename)[0]
        _check_promise(filename, named, kind, header.format, "its encryption header says")
        inner, data = _crypto.decrypt(data, passphrase, filename)  # authenticated before anything else
        spec = format_for(kind or inner)
    else:
        if named_encrypted:
            raise PersistError(f"{filename} is named as an encrypted file but is not encrypted; "
                               f"rename it .{named.extension if named else 'tap'} if that is what it is")
        passphrase = None
        spec = format_for(kind) if kind is not None else sniff(data[:_SNIFF_BYTES], filename)
        _check_promise(filename, named, kind, spec.name, "its content looks like")
    app = spec.load(data, filename)
    from tapster.core.service import IService

    if not isinstance(app, IService):  # IService(app, None) is None, spelled for a type checker
        raise PersistError(f"{filename} holds a {type(app).__name__}, not an application; rebuild it with mktap")
    _check_tree(app, filename)
    name = getattr(app, "name", None)
    problem = None if name is None else check_name(name)  # a nameless root is named when saved
    if problem is not None:
        raise PersistError(f"{filename}: {problem}; refusing to load it (rebuild it with mktap -n NAME)")
    _remember(app, spec.name, passphrase)
    return app


def loadValueFromFile(filename: str, variable: str, passphrase: str | bytes | None = None) -> Any:
    """Run the Python file ``filename`` and return its global ``variable`` (Twisted's ``sob.loadValueFromFile``).

    What ``twistd -y`` and ``loadApplication(filename, "python")`` do with a
    ``.tac``: the file runs with ``__file__`` set in a namespace of its own
    (a ``.py`` that ``import`` would find runs as that module, so the classes
    it defines pickle by a loadable name). It runs code: trusted files only.
    A file encrypted by tapster is decrypted with ``passphrase`` first. Every
    mistake is a :class:`tapster.core.errors.TapsterError` naming the file.
    Any: the file decides what ``variable`` holds.
    """
    from tapster.core._tac import run_file

    return run_file(filename, variable, passphrase)


_SERVICE_METHODS = ("privilegedStartService", "startService", "stopService", "setServiceParent")


def _check_tree(app: object, filename: str) -> None:
    """Every child in the loaded tree is a service, and each appears once: no cycle, no shared child.

    A file (from a stranger, or damaged) can hold a string where a service
    belongs, or a collection that contains itself; found here, that is one
    line naming where, instead of an error halfway through starting.
    """
    from tapster.core._persist.limits import brief

    components = getattr(app, "__dict__", {}).get("_adapterCache")
    if components is not None and (not isinstance(components, dict)
                                   or not all(isinstance(k, str) for k in components)):
        raise PersistError(f"{filename}: the application's components are not a table of interface names; "
                           "rebuild the file with mktap")
    seen = {id(app)}
    stack: list[tuple[object, str]] = [(app, "the application")]
    while stack:
        collection, where = stack.pop()
        children = getattr(collection, "services", None)
        if children is None:
            continue
        if not isinstance(children, list):
            raise PersistError(f"{filename}: {where} holds its services in a {type(children).__name__}, not a list")
        for index, child in enumerate(children):
            label = getattr(child, "name", None)
            here = f"{where} / service #{index + 1}" + (f" ({brief(label)})" if isinstance(label, str) else "")
            missing = [m for m in _SERVICE_METHODS if not callable(getattr(type(child), m, None))]
            if missing:
                raise PersistError(f"{filename}: {here} is a {type(child).__name__}, not a service "
                                   f"(it has no {missing[0]}); rebuild the file with mktap")
            if id(child) in seen:
                raise PersistError(f"{filename}: {here} appears twice in the service tree (a cycle, or a service "
                                   "with two parents); rebuild the file with mktap")
            seen.add(id(child))
            stack.append((child, here))


def _check_promise(filename: str, named: FormatSpec | None, kind: str | None, actual: str, how: str) -> None:
    """A file named for a safe format is read by that format only, whatever else it claims."""
    if named is None or not named.safe:
        return
    wanted = kind or actual
    if wanted != named.name:
        by = f"-{'x' if wanted == 'xml' else 's'} / --type {wanted}" if kind else how
        raise PersistError(
            f"{filename} is named as a {named.name} file, but {by} {wanted}; a file named for a safe "
            f"format is loaded by that format only (rename it if you trust it as {wanted})"
        )


# -- what generated .tas files call (public: a .tas file imports them) ------------------


def instance(
    cls: type[_T],
    state: object = None,
    *,
    args: tuple[object, ...] = (),
    kwargs: dict[str, object] | None = None,
    listitems: list[object] | None = None,
    dictitems: list[tuple[object, object]] | None = None,
) -> _T:
    """A new ``cls`` made without calling ``__init__`` (``cls.__new__(cls, *args, **kwargs)``), with ``state``.

    ``state`` is restored as pickle restores it: by the object's
    ``__setstate__`` if it has one, else into its ``__dict__`` (a
    ``(dict, slots)`` pair also sets slots).
    """
    obj = cls.__new__(cls, *args, **(kwargs or {}))
    return setstate(obj, state, listitems=listitems, dictitems=dictitems)


def setstate(obj: _T, state: object = None, *, listitems: list[object] | None = None,
             dictitems: list[tuple[object, object]] | None = None) -> _T:
    """Append ``listitems``, set ``dictitems``, then restore ``state`` (see :func:`instance`); returns ``obj``."""
    from tapster.core._persist.walker import apply_state

    apply_state(obj, state, listitems, dictitems)  # returns obj itself
    return obj
