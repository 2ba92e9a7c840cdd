"""The public home of the console plugins' saved classes (``telnet`` and ``manhole``).

An application file records a class by its import path, and such a path is
public API (see docs/plugins.md, "Saved files"). The console's code lives in
the private package :mod:`tapster.plugins._console`, split into small parts;
the four classes a saved application holds report this module as their
``__module__``, so files name ``tapster.plugins.console.TelnetService`` and
keep loading however the private package is rearranged.

The classes are imported on first use (PEP 562), so naming one does not pull
in the SSH or telnet machinery it does not need. This module is not a plugin
(it has no entry point); it only names things.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what __getattr__ finds, for a type checker
    from tapster.plugins._console.console import Console
    from tapster.plugins._console.service import ManholeService, TelnetService
    from tapster.plugins._console.telnet import TelnetShellFactory

__all__ = ["Console", "TelnetService", "ManholeService", "TelnetShellFactory"]

#: Public name → the private module that defines it.
_HOMES = {
    "Console": "tapster.plugins._console.console",
    "TelnetService": "tapster.plugins._console.service",
    "ManholeService": "tapster.plugins._console.service",
    "TelnetShellFactory": "tapster.plugins._console.telnet",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
