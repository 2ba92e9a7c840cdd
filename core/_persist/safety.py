"""What a file from a stranger may name: the explicit allow-list of the safe formats.

The XML format (and any format a plugin adds with ``safe=True``) rebuilds
objects from names written in the file. It may name only what the name's
owner has declared safe to appear in a stranger's file: never whole module
prefixes, never "whatever tapster's core defines".

Declarations come from three places, read when a safe file is loaded or
written, never at import time of the declaring module:

1. tapster's own classes, through the ``tapster_safe_names`` hook that
   :mod:`tapster.core._builtin_hooks` implements like any hook package;
2. every installed ``mktap.plugins`` entry point: the module (or object) it
   names may have a ``safeNames`` sequence of classes and functions (or their
   dotted paths). A plugin's module is imported only when the file names
   something tapster and the plugins already read do not declare, the
   plugins whose package holds the name first: a file that names only core
   classes imports no plugin;
3. any ``tapster.hooks`` package implementing ``tapster_safe_names``.

A name's module is imported only after the name was found in a declaration:
a file cannot make tapster import a module nobody declared.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["SafeNames", "dotted", "safe_names"]

_log = logging.getLogger("tapster.persist")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def dotted(obj: Any) -> str:
    """The path a declaration stands for: a string as given, else ``module.qualname`` of the object."""
    if isinstance(obj, str):
        if not _DOTTED.match(obj):
            raise ValueError(f"{obj!r} is not a dotted import path")
        return obj
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{obj!r} has no import path (a lambda or a local class cannot be declared safe)")
    return f"{module}.{qualname}"


def _package(module: str) -> str:
    """The package a plugin module speaks for: ``tapster_hello`` for ``tapster_hello.plugin``."""
    return module.rpartition(".")[0] or module


class SafeNames:
    """The declared names, gathered lazily: hooks at once, a plugin's declarations when first needed."""

    def __init__(self, declared: Iterable[str] = (), plugins: dict[str, list[str]] | None = None) -> None:
        self._names: set[str] = set(declared)
        #: plugin package → entry-point values not read yet (value is ``module`` or ``module:attr``)
        self._pending: dict[str, list[str]] = plugins if plugins is not None else {}

    def allows(self, path: str) -> bool:
        """Whether ``path`` (``module.qualname``) was declared safe by its owner.

        The plugins whose package holds ``path`` are read first (the common
        case: a plugin declares its own classes); if none of them declares it,
        every other plugin is read too, so that the answer never depends on
        what a file happened to name before (a plugin may declare a class of a
        helper package of its own).
        """
        if path in self._names:
            return True
        for package in [p for p in self._pending if path.startswith(p + ".")]:
            for value in self._pending.pop(package):
                self._names.update(_plugin_declarations(value))
        if path not in self._names and self._pending:
            self.declared()
        return path in self._names

    def declared(self) -> frozenset[str]:
        """Every name declared so far (reading every plugin's declarations)."""
        for package in list(self._pending):
            for value in self._pending.pop(package):
                self._names.update(_plugin_declarations(value))
        return frozenset(self._names)


def _plugin_declarations(value: str) -> list[str]:
    """The ``safeNames`` of the plugin entry point ``value``; a broken plugin declares nothing (logged)."""
    import importlib

    module_name, _, attr = value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return [dotted(item) for item in getattr(obj, "safeNames", ())]
    except Exception as e:  # noqa: BLE001 - one broken plugin must not break loading the others' files
        _log.warning("plugin %s declares no safe names: %s: %s", value, type(e).__name__, e)
        return []


def safe_names() -> SafeNames:
    """A fresh view of every declaration (plugins and hook packages installed now)."""
    from tapster.core.plugin import get_plugin_manager, plugin_entries

    declared: set[str] = set()
    for batch in get_plugin_manager().hook.tapster_safe_names():
        for item in batch or ():
            try:
                declared.add(dotted(item))
            except ValueError as e:
                _log.warning("ignoring a safe-name declaration: %s", e)
    plugins: dict[str, list[str]] = {}
    for entry in plugin_entries().values():
        module = entry.value.partition(":")[0].strip()
        if _DOTTED.match(module):
            plugins.setdefault(_package(module), []).append(entry.value)
    return SafeNames(declared, plugins)
