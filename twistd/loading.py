"""Where the application comes from: a saved file, a .tac, or a plugin built in memory.

A plugin is built by :func:`tapster.core.plugin.build_application` and
passphrases are read by :mod:`tapster.core.terminal`, the same code mktap
uses, so that ``twistd qotd ...`` and ``mktap qotd ...`` can never disagree
about a plugin's options or a passphrase file (twistd never imports mktap).

Loading happens before the daemon forks, in the run directory, so a missing
file, a wrong passphrase or a bad plugin option is reported to the
administrator's terminal as one line.
"""

from __future__ import annotations

import os
import sys
import types
from typing import TYPE_CHECKING

from tapster.core import usage
from tapster.core.errors import TapsterError

if TYPE_CHECKING:
    from tapster.core.service import Application, IService
    from tapster.twistd.options import ServerOptions

__all__ = ["load_application", "load_tac", "read_passphrase", "PluginUsageError"]


class PluginUsageError(usage.UsageError):
    """The plugin's own options were wrong (exit status 2, like mktap)."""


def load_application(config: ServerOptions) -> tuple[IService, str]:
    """The application ``config`` names, and a description of where it came from (for the log)."""
    if config.plugin:
        return build_plugin(config.plugin, config.plugin_argv), f"plugin {config.plugin}"
    source = config.source
    assert source is not None  # postOptions insists on a file or a plugin
    path, kind = source
    if kind == "python":
        return load_tac(path), path
    from tapster.core import persist

    return persist.load(path, kind=kind, passphrase=read_passphrase(config, path)), path


def build_plugin(plugin: str, argv: list[str]) -> Application:
    """``twistd qotd --port 8007``: the plugin's application, built exactly as mktap would."""
    from tapster.core.plugin import build_application

    try:
        return build_application(plugin, argv, prog="twistd")
    except usage.UsageError as e:
        text = str(e)
        hint = "" if "--help" in text else f" (see twistd {plugin} --help)"
        raise PluginUsageError(f"{plugin}: {text}{hint}") from e


def read_passphrase(config: ServerOptions, path: str) -> str | bytes | None:
    """The passphrase for ``path``: from --passphrase-file, else asked on the terminal when encrypted.

    ``-e`` asks even when the file does not look encrypted (as Twisted's
    twistd did); an encrypted file is recognised by its header without ``-e``.
    """
    from tapster.core import persist
    from tapster.core.terminal import ask_passphrase as ask
    from tapster.core.terminal import read_passphrase_file

    if config["passphrase-file"]:
        return read_passphrase_file(config["passphrase-file"])
    if not (config["encrypted"] or persist.is_encrypted(path)):
        return None
    if not os.path.exists(path):
        return None  # persist.load says the file is missing
    try:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    except ValueError:
        interactive = False
    if not interactive:
        raise TapsterError(f"{path} is encrypted: give --passphrase-file FILE (there is no terminal to ask on)")
    return ask(f"Passphrase for {path}: ", confirm=False)


def _tac_module_name(path: str) -> str:
    """The module name a ``.tac``/``.py`` file runs under, so that the shutdown save can name its classes.

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


def load_tac(path: str) -> IService:
    """Run the Python file ``path`` and return the ``application`` it defines.

    As with Twisted's ``-y``, the file runs with ``__file__`` set, in a
    namespace of its own.
    """
    try:
        with open(path, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        raise TapsterError(f"no such file: {path} (check the path given to -y)") from None
    except IsADirectoryError:
        raise TapsterError(f"{path} is a directory, not a .tac file") from None
    except OSError as e:
        raise TapsterError(f"cannot read {path}: {e.strerror}") from e
    try:
        code = compile(source, path, "exec")
    except SyntaxError as e:
        raise TapsterError(f"{path}:{e.lineno}: syntax error: {e.msg}") from e
    name = _tac_module_name(path)
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
    if "application" not in namespace:
        raise TapsterError(
            f"{path} defines no `application`: a .tac file must end with "
            "application = Application(name) (from tapster.core.service) holding its services"
        )
    application = namespace["application"]
    from tapster.core.service import IService

    if not isinstance(application, IService):  # IService(application, None) is None, for a type checker
        raise TapsterError(
            f"{path}: `application` is a {type(application).__name__}, not an application "
            "(use tapster.core.service.Application(name))"
        )
    return application
