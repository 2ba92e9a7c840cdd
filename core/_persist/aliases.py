"""Old class paths in saved files, and where those classes live now.

A saved application (``.tap``, ``.tax``, ``.tas``) records each class and
function by its import path, so a class path that has ever appeared in a
saved file is public API. Moving or renaming such a class must add a row
here, never break the files already on users' disks. Every loader of a
format that records paths (pickle, XML, source) reads old paths through
:func:`current_path`; writers always write the current ones.

The allow-list of the safe formats is checked on the *current* path, after
this table has been read: an alias can never make a name loadable that the
allow-list refuses.
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

__all__ = ["MODULE_ALIASES", "CLASS_ALIASES", "current_module", "current_path", "legacy_import"]

#: Whole modules (and everything under them) that moved. The longest matching prefix wins.
MODULE_ALIASES: Mapping[str, str] = {
    # Before the tapster.* namespace (files written up to commit c504e30):
    "core": "tapster.core",
    "plugins": "tapster.plugins",
    # the helpers every generated .tas imported: now public
    "core._source_format": "tapster.core.persist",
}

#: Single classes or functions that moved to another module or name (old path → new path).
CLASS_ALIASES: Mapping[str, str] = {
    # The console's saved classes now report their public module, tapster.plugins.console.
    "plugins._console.console.Console": "tapster.plugins.console.Console",
    "plugins._console.service.TelnetService": "tapster.plugins.console.TelnetService",
    "plugins._console.service.ManholeService": "tapster.plugins.console.ManholeService",
    "plugins._console.telnet.TelnetShellFactory": "tapster.plugins.console.TelnetShellFactory",
    "tapster.plugins._console.console.Console": "tapster.plugins.console.Console",
    "tapster.plugins._console.service.TelnetService": "tapster.plugins.console.TelnetService",
    "tapster.plugins._console.service.ManholeService": "tapster.plugins.console.ManholeService",
    "tapster.plugins._console.telnet.TelnetShellFactory": "tapster.plugins.console.TelnetShellFactory",
}


def current_module(module: str) -> str:
    """The module that ``module`` (as a saved file names it) is today."""
    best = ""
    for old in MODULE_ALIASES:
        if (module == old or module.startswith(old + ".")) and len(old) > len(best):
            best = old
    return MODULE_ALIASES[best] + module[len(best):] if best else module


def current_path(module: str, qualname: str) -> tuple[str, str]:
    """(module, qualname) of what a saved file calls ``module.qualname`` today."""
    moved = CLASS_ALIASES.get(f"{module}.{qualname}")
    if moved is not None:
        new_module, _, new_name = moved.rpartition(".")
        return new_module, new_name
    return current_module(module), qualname


def legacy_import(name: str, globals: Mapping[str, Any] | None = None, locals: Mapping[str, Any] | None = None,
                  fromlist: Sequence[str] | None = (), level: int = 0) -> ModuleType:
    """``__import__`` for the source format: ``from core.service import X`` in an old ``.tas`` still works.

    Only absolute imports of aliased modules are redirected; everything else
    is the ordinary import. ``from plugins._console.service import TelnetService``
    finds the class at its new home through :data:`CLASS_ALIASES`.
    """
    if level != 0 or current_module(name) == name:
        return builtins.__import__(name, globals, locals, fromlist or (), level)
    module = importlib.import_module(current_module(name))
    if fromlist:
        return _ModuleView(module, name) if any(f"{name}.{f}" in CLASS_ALIASES for f in fromlist) else module
    # ``import core.service`` binds ``core``: the module the old top-level name is now.
    return importlib.import_module(current_module(name.partition(".")[0]))


class _ModuleView(ModuleType):
    """A module whose moved names answer from their new homes (``from <old> import <moved>``)."""

    def __init__(self, module: ModuleType, old_name: str) -> None:
        super().__init__(module.__name__)
        self._module = module
        self._old = old_name

    def __getattr__(self, attr: str) -> Any:
        moved = CLASS_ALIASES.get(f"{self._old}.{attr}")
        if moved is not None:
            new_module, _, new_name = moved.rpartition(".")
            return getattr(importlib.import_module(new_module), new_name)
        return getattr(self._module, attr)
