"""Running a Python application file (a ``.tac``, or a ``.py`` of seed 002) and taking a variable from it.

Shared by :func:`tapster.core.persist.loadValueFromFile` (so by
``loadApplication(filename, "python")``) and twistd's ``-y``: one place
decides the module a file runs as and how its mistakes read.
"""

from __future__ import annotations

import os
import sys
import types

from tapster.core.errors import TapsterError

__all__ = ["module_name", "run_file"]


def module_name(path: str) -> str:
    """The module name a ``.tac``/``.py`` file runs under, so that a shutdown save can name its classes.

    Twisted's seed 002 saves an application whose protocol is defined in
    ``reverse_app.py`` itself, and runs the save again with ``twistd -f``. That
    works only if the classes are importable by the name they record: so a
    ``.py`` file whose stem is an identifier runs as that module, *if* ``import
    stem`` (with the run directory on ``sys.path``, as when the save is loaded)
    would find this very file and nothing else has that name. Anything else
    (a ``.tac``, a stem shadowing an installed module) runs as ``__tac__``, and
    a shutdown save of classes defined in it fails with a warning.
    """
    import importlib.util

    directory, filename = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(filename)
    if ext != ".py" or not stem.isidentifier() or stem in sys.modules:
        return "__tac__"
    try:
        spec = importlib.util.find_spec(stem)
    except (ImportError, ValueError):
        return "__tac__"
    origin = getattr(spec, "origin", None)
    if origin is None or os.path.abspath(origin) != os.path.join(directory, filename):
        return "__tac__"
    return stem


def _read(path: str, passphrase: str | bytes | None) -> bytes:
    try:
        with open(path, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        raise TapsterError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise TapsterError(f"{path} is a directory, not a .tac file") from None
    except OSError as e:
        raise TapsterError(f"cannot read {path}: {e.strerror}") from e
    from tapster.core._persist import crypto

    if crypto.is_encrypted(source):
        if passphrase is None:
            raise TapsterError(f"{path} is encrypted: a passphrase is needed to run it")
        source = crypto.decrypt(source, passphrase, path)[1]
    return source


def run_file(path: str, variable: str = "application", passphrase: str | bytes | None = None) -> object:
    """Run the Python file ``path`` in a namespace of its own (``__file__`` set) and return ``variable`` from it.

    Every mistake in the file (missing, a syntax error, an exception while it
    runs, no ``variable``) is a :class:`TapsterError` naming the file.
    """
    source = _read(path, passphrase)
    try:
        code = compile(source, path, "exec")
    except SyntaxError as e:
        raise TapsterError(f"{path}:{e.lineno}: syntax error: {e.msg}") from e
    name = module_name(path)
    module = types.ModuleType(name)
    module.__file__ = os.path.abspath(path)
    namespace: dict[str, object] = module.__dict__
    if name != "__tac__":
        sys.modules[name] = module  # classes defined here pickle as name.Class, and load again by import
    try:
        exec(code, namespace)
    except Exception as e:
        if name != "__tac__":
            sys.modules.pop(name, None)
        raise TapsterError(f"{path} failed while running: {type(e).__name__}: {e}") from e
    if variable not in namespace:
        if variable == "application":
            raise TapsterError(
                f"{path} defines no `application`: a .tac file must end with "
                "application = Application(name) (from tapster.core.service) holding its services"
            )
        raise TapsterError(f"{path} defines no `{variable}`")
    return namespace[variable]
