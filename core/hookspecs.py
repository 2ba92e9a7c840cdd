"""Every pluggy hook specification of tapster, in one place.

Cross-cutting extension points live here; *plugins* in the mktap sense
(``mktap qotd``) are found through the ``mktap.plugins`` entry points, not
through these hooks. A pip package extends tapster by exposing a module with
``@hookimpl`` functions under the entry-point group ``tapster.hooks``::

    [project.entry-points."tapster.hooks"]
    myformat = "mypackage.tapster_hooks"

Hook implementations of tapster's own built-ins live in
:mod:`tapster.core._builtin_hooks` and are registered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tapster.core._reactor.loop import AsyncioReactor
    from tapster.core.service import Application

__all__ = ["hookspec", "hookimpl", "ReactorSpec", "FormatSpec", "PROJECT"]

#: The pluggy project name: markers and the plugin manager use it.
PROJECT = "tapster"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ReactorSpec:
    """A reactor a user can choose with ``twistd --reactor NAME``.

    ``factory()`` creates the reactor (an object with the interface of
    :class:`tapster.core._reactor.loop.AsyncioReactor`, typically a subclass of
    it); it is called once per process.
    """

    name: str
    description: str
    factory: Callable[[], AsyncioReactor]


@dataclass(frozen=True)
class FormatSpec:
    """A serialization format for saved applications (``mktap --type NAME``).

    ``dump(app) -> bytes`` and ``load(data, filename) -> app``; ``sniff(head)``
    says whether the first bytes of a file look like this format, so that
    ``twistd -f`` can recognise a file by content.
    """

    name: str
    extension: str
    description: str
    dump: Callable[[Application], bytes]
    load: Callable[[bytes, str], Application]
    sniff: Callable[[bytes], bool]
    safe: bool = False


@hookspec
def tapster_reactors() -> list[ReactorSpec]:
    """Return the reactors this plugin provides.

    Called once, the first time a reactor is installed or ``twistd
    --help-reactors`` lists them. Names must be unique; a later duplicate
    is ignored with a warning.
    """
    raise NotImplementedError  # a specification: pluggy calls the implementations, never this


@hookspec
def tapster_formats() -> list[FormatSpec]:
    """Return the application file formats this plugin provides.

    Called when mktap saves or twistd loads an application. The built-in
    ``pickle`` format is itself provided through this hook.
    """
    raise NotImplementedError  # a specification: pluggy calls the implementations, never this


@hookspec
def tapster_safe_names() -> list[object]:
    """Return the classes and functions (or their dotted paths) a safe format may name.

    A file from a stranger (XML) can name only what some owner declared here
    or in a plugin module's ``safeNames``: things that are inert parts of an
    application (services, factories, protocols, plain values). Never declare
    a callable whose purpose is to run code, write files or start processes.
    Called when a safe file is loaded or saved.
    """
    raise NotImplementedError  # a specification: pluggy calls the implementations, never this


@hookspec
def tapster_twistd_started(application: Application) -> None:
    """Called by twistd once the application's services have started and its ports are bound."""


@hookspec
def tapster_twistd_stopping(application: Application) -> None:
    """Called by twistd when shutdown begins, before the services are stopped."""
