"""Reloading a running application on SIGHUP without ever taking a working server down.

The rule: **validate everything, then change as little as possible**.

1. Load the application again from where it came from (the same file and
   format, an encrypted file with the passphrase kept in memory, a .tac
   executed again, a YAML recipe or a plugin rebuilt from its plugins). A
   failure here changes nothing.
2. Compare the new tree with the file as it was *loaded* (not as it runs now),
   one top-level service at a time, keyed by name (an unnamed service by its
   position and class): a service whose saved form is byte-for-byte what the
   file gave before is **kept**, running, with its sockets and connections
   untouched and any change made to it live (through the console) intact;
   one that differs is **replaced**; one no longer in the file is **stopped**
   (gracefully: it drains); a new one is **started**.
3. Bind every new listening address before anything changes. A listening
   server (TCP, UNIX, SSL, or an endpoint service: a socket systemd passed
   too) in a replaced or stopped service that sits on the same address as
   one in the new tree hands its socket over: the new factory serves the next
   connection, the old factory's connections finish as they would have, and
   no connection is ever refused. Any failure (a port in use, a service whose
   start raises) undoes what was done and the old tree keeps serving.

What is kept at shutdown follows: the shutdown file is the running tree, so
live changes survive in every service the new file did not change, and the
file wins for every service it changed. A service added live (through the
console) is not the file's: a reload leaves it running, and the shutdown file
keeps it.

Settings of the application itself (its name, user, group, format) are those
it started with; a reload that changes them says that a restart is needed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tapster.core import internet  # at import, as everything here: a --chroot hides the library later
from tapster.core.endpoints import describe
from tapster.core.errors import TapsterError
from tapster.core.service import MultiService

if TYPE_CHECKING:
    from tapster.core.service import IService, IServiceCollection

__all__ = ["Reloader", "ReloadResult", "ReloadError", "load_again"]

_log = logging.getLogger("tapster.twistd")


class ReloadError(TapsterError):
    """A reload that changed nothing: the message names the file and the problem."""


@dataclass
class ReloadResult:
    """What a reload did, by top-level service key."""

    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    handed_over: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.kept)} kept", f"{len(self.replaced)} replaced", f"{len(self.stopped)} stopped",
                 f"{len(self.started)} started"]
        if self.handed_over:
            parts.append(f"{self.handed_over} listening socket{'s' * (self.handed_over != 1)} handed over")
        return ", ".join(parts)


def load_again(load: Callable[[], IService], source: str,
               serving: str = "still serving the running application") -> IService:
    """``load()``, or a ReloadError naming ``source``, the problem, and what keeps serving (``serving``)."""
    try:
        return load()
    except TapsterError as e:
        raise ReloadError(f"reloading {source} failed: {e}; {serving}") from e
    except Exception as e:  # noqa: BLE001 - a .tac or plugin may raise anything
        raise ReloadError(f"reloading {source} failed: {type(e).__name__}: {e}; {serving}") from e


def _key(service: IService, index: int) -> str:
    name = getattr(service, "name", None)
    return repr(name) if name else f"#{index} {type(service).__name__}"


def snapshot(service: IService, parent: object) -> bytes | None:
    """The saved form of one service, its parent left out; None when it cannot be pickled (always "changed")."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)

    def outside(obj: object) -> str | None:
        return "parent" if obj is parent else None

    pickler.persistent_id = outside  # type: ignore[method-assign]  # pickle's documented hook
    try:
        pickler.dump(service)
    except Exception:  # noqa: BLE001 - anything unpicklable (a .tac's lambda) is compared as "changed"
        return None
    return buffer.getvalue()


def snapshots(application: MultiService) -> dict[str, bytes | None]:
    return {_key(s, i): snapshot(s, application) for i, s in enumerate(application.services)}


def _servers(service: IService) -> Iterator[Any]:  # Any: core.internet's listening servers, by duck type
    """The stream servers (TCP, UNIX, SSL) in a subtree: what can hand a listening socket over."""
    if isinstance(service, (internet.TCPServer, internet.UNIXServer, internet.SSLServer,
                            internet.StreamServerEndpointService)):
        yield service
    for child in getattr(service, "services", ()):
        yield from _servers(child)


def _address(server: Any) -> str | None:
    try:
        return describe(server)
    except (TypeError, ValueError):
        return None


def _set_parent(service: IService, parent: IServiceCollection | None) -> None:
    """Services keep ``parent`` as a plain attribute; the interface only declares it readable."""
    service.parent = parent  # type: ignore[misc]  # IService's parent is a read-only property for typing only


def _port_of(server: Any) -> Any:
    """The listening port a server holds now, or None."""
    if isinstance(server, internet.StreamServerEndpointService):
        waiting = server._waitingForPort
        return waiting.result if server._listening() else None
    return server._port


def _give_port(server: Any, port: Any) -> None:
    """Make ``server`` hold ``port`` (None: nothing), as if it had listened itself."""
    if isinstance(server, internet.StreamServerEndpointService):
        from tapster.core.defer import succeed

        server._waitingForPort = None if port is None else succeed(port)
    else:
        server._port = port


class _Handover:
    """One listening socket moving from an old server to a new one (and back, on undo)."""

    def __init__(self, old: Any, new: Any) -> None:
        self.old, self.new = old, new
        self.port = _port_of(old)

    def commit(self) -> None:
        port = self.port
        old_factory, new_factory = port.factory, self.new.factory
        new_factory.doStart()
        port.factory = new_factory
        old_factory.doStop()
        _give_port(self.old, None)
        _give_port(self.new, port)

    def undo(self) -> None:
        port = self.port
        new_factory, old_factory = port.factory, self.old.factory
        old_factory.doStart()
        port.factory = old_factory
        new_factory.doStop()
        _give_port(self.new, None)
        _give_port(self.old, port)


class Reloader:
    """Reloads ``application`` (the running root) from ``load()``; ``source`` names the file in messages."""

    def __init__(self, application: MultiService, load: Callable[[], IService], source: str) -> None:
        self.application = application
        self.load = load
        self.source = source
        self.loaded = snapshots(application)  # the file as loaded: what a reload compares with
        #: The top-level services that came from the file (by identity): any other was added live, through
        #: the console, and is none of the file's business: a reload leaves it running as it is.
        self._from_file = {id(s) for s in application.services}

    def reload(self) -> ReloadResult:
        """Do the reload (see the module docstring); raises ReloadError having changed nothing."""
        new = load_again(self.load, self.source)
        if not isinstance(new, MultiService):
            raise ReloadError(f"reloading {self.source} failed: it gave a {type(new).__name__}, not an application")
        app = self.application
        result = ReloadResult()
        for attribute in ("uid", "gid", "processName"):
            if getattr(new, attribute, None) != getattr(app, attribute, None):
                result.notes.append(f"{attribute} changed in the file: it takes effect at the next restart")

        from_file = [s for s in app.services if id(s) in self._from_file]
        live = len(app.services) - len(from_file)
        if live:
            result.notes.append(f"{live} service{'s' * (live != 1)} added live (not in the file) kept as they run")
        old_by_key = {_key(s, i): s for i, s in enumerate(from_file)}
        new_children = list(new.services)
        new_by_key = {_key(s, i): s for i, s in enumerate(new_children)}
        new_loaded = {key: snapshot(s, new) for key, s in new_by_key.items()}
        changes: list[tuple[str, IService | None, IService]] = []  # (key, old or None, new)
        for key, service in new_by_key.items():
            if key in old_by_key:
                same = new_loaded[key] is not None and new_loaded[key] == self.loaded.get(key)
                if same:
                    result.kept.append(key)
                else:
                    changes.append((key, old_by_key[key], service))
                    result.replaced.append(key)
            else:
                changes.append((key, None, service))
                result.started.append(key)
        going = [old_by_key[key] for key in old_by_key if key not in new_by_key]
        result.stopped = [key for key in old_by_key if key not in new_by_key]
        leaving = going + [old for _, old, _ in changes if old is not None]

        # Pair every server of the incoming services with a leaving one on the same address.
        available: dict[str, Any] = {}
        for old_service in leaving:
            for server in _servers(old_service):
                address = _address(server)
                if address is not None and _port_of(server) is not None:
                    available.setdefault(address, server)
        handovers: list[_Handover] = []
        for _, _, incoming in changes:
            for server in _servers(incoming):
                address = _address(server)
                if address is not None and address in available:
                    handovers.append(_Handover(available.pop(address), server))

        # Detach the new children from the tree they were loaded in; they join the running one below.
        for service in new_children:
            new.removeService(service)
            _set_parent(service, None)
        added: list[IService] = []
        committed: list[_Handover] = []
        self._names: dict[str, IService] = {}  # names taken from replaced services, given back on undo
        try:
            for handover in handovers:
                handover.commit()
                committed.append(handover)
            for _, old, service in changes:
                added.append(service)  # before: one that fails half-started is taken out too
                self._add(service, old)
        except BaseException as e:
            for handover in reversed(committed):  # first: stopping the new services must not close these
                handover.undo()
            for service in reversed(added):
                self._remove(service)
            app.namedServices.update(self._names)
            if isinstance(e, Exception):
                reason = str(e) if isinstance(e, TapsterError) else f"{type(e).__name__}: {e}"
                raise ReloadError(f"reloading {self.source} failed: {reason}; "
                                  "still serving the running application") from e
            raise
        result.handed_over = len(handovers)
        for old_service in leaving:
            self._remove(old_service)
        for key in result.replaced + result.started:
            self.loaded[key] = new_loaded[key]
        self._from_file = {id(s) for s in app.services if id(s) in self._from_file or s in added}
        for key in result.stopped:
            self.loaded.pop(key, None)
        return result

    def _add(self, service: IService, replacing: IService | None) -> None:
        """Put ``service`` in the running tree (where ``replacing`` is) and start it; undone if that raises."""
        app = self.application
        name = getattr(service, "name", None)
        if replacing is not None and name and app.namedServices.get(name) is replacing:
            del app.namedServices[name]  # the old one leaves once all is started; the name is the new one's
            self._names[name] = replacing
        app.addService(service)  # starts it: binds what was not handed over (if it raises, the caller undoes)
        _set_parent(service, app)
        if replacing is not None and replacing in app.services:
            app.services.remove(service)
            app.services.insert(app.services.index(replacing), service)  # application.ports keeps its order

    def _remove(self, service: IService) -> None:
        """Take ``service`` out of the running tree, stopping it gracefully (a drain runs in the background)."""
        app = self.application
        name = getattr(service, "name", None)
        if name and app.namedServices.get(name) is service:
            del app.namedServices[name]
        if service in app.services:
            app.services.remove(service)
        _set_parent(service, None)
        try:
            done = service.stopService()  # also what a half-started one bound
        except Exception:
            _log.exception("error while stopping %r during a reload", service)
            return
        if done is not None:
            future = asyncio.ensure_future(done)

            def report(f: asyncio.Future[object]) -> None:
                if not f.cancelled() and f.exception() is not None:
                    _log.error("error while stopping %r during a reload: %s", service, f.exception())

            future.add_done_callback(report)
