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


def load_tac(path: str) -> IService:
    """Run the Python file ``path`` and return the ``application`` it defines.

    As with Twisted's ``-y``, the file runs with ``__file__`` set, in a
    namespace of its own (:func:`tapster.core.persist.loadValueFromFile`,
    which ``loadApplication(path, "python")`` uses too).
    """
    from tapster.core import persist

    if not os.path.lexists(path):
        raise TapsterError(f"no such file: {path} (check the path given to -y)")
    application = persist.loadValueFromFile(path, "application")
    from tapster.core.service import IService

    if not isinstance(application, IService):  # IService(application, None) is None, for a type checker
        raise TapsterError(
            f"{path}: `application` is a {type(application).__name__}, not an application "
            "(use tapster.core.service.Application(name))"
        )
    return application
