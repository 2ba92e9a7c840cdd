"""The console services saved in applications: ``telnet`` and ``manhole``.

Both find the application they belong to when they start, by walking
``.parent`` up to the root, hand it to their :class:`.console.Console` (the
sessions' ``application``) and publish it as ``__main__.application``, where
the old tutorials look for it. Stopping the service closes its sessions.

:class:`TelnetService` listens through an ordinary child service made by
:func:`tapster.core.endpoints.service`, so ports, errors and log lines are the ones
every tapster server has. :class:`ManholeService` binds its socket itself
(synchronously, in ``privilegedStartService``, so "port in use" fails the
start) and hands it to asyncssh on the shared reactor's loop; asyncssh is
imported only then.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tapster.core.errors import PluginError
from tapster.core.service import MultiService
from tapster.plugins._console.console import Console

__all__ = ["TelnetService", "ManholeService", "rootOf", "SSH_HINT"]

SSH_HINT = "the manhole needs asyncssh: pip install 'tapster[ssh]'"

_log = logging.getLogger("tapster.console")


def rootOf(service: Any) -> Any:
    """The top of the tree ``service`` is in (the Application when there is one)."""
    while getattr(service, "parent", None) is not None:
        service = service.parent
    return service


def _publish(application: Any) -> None:
    import __main__

    __main__.application = application


class _ConsoleService(MultiService):
    """A service carrying a :class:`Console`: start it with the root, stop it with its sessions."""

    #: A live shell into one process: twistd --workers refuses it (each worker would be another world).
    singleProcess = True

    console: Console

    @property
    def tapsterRecipe(self) -> Any:
        """The recipe mktap keeps for YAML, with the password replaced by its hash."""
        return self.__dict__.get("_recipe")

    @tapsterRecipe.setter
    def tapsterRecipe(self, recipe: Any) -> None:
        from tapster.plugins._console.options import scrub_recipe

        self.__dict__["_recipe"] = scrub_recipe(recipe, self.console.passwordHash)

    def startService(self) -> None:
        root = rootOf(self)
        self.console.start(root, self.name or type(self).__name__)
        _publish(root)
        MultiService.startService(self)

    def stopService(self) -> Any:
        self.console.stop("the console is stopping; bye")
        return MultiService.stopService(self)


class TelnetService(_ConsoleService):
    """The telnet console: a listening child service on ``endpoint`` with the console's factory."""

    __module__ = "tapster.plugins.console"  # the public path saved files record

    def __init__(self, endpoint: str, console: Console) -> None:
        from tapster.core import endpoints
        from tapster.plugins._console.telnet import TelnetShellFactory

        MultiService.__init__(self)
        self.endpoint = endpoint
        self.console = console
        self.factory = TelnetShellFactory(console)
        endpoints.service(endpoint, self.factory).setServiceParent(self)

    def __repr__(self) -> str:
        return f"<TelnetService {self.name!r} on {self.endpoint} {'running' if self.running else 'stopped'}>"


class ManholeService(_ConsoleService):
    """The SSH console: asyncssh on the shared loop, keys from ``authorizedKeys`` and/or the password.

    ``hostKey`` is the host key file; a relative path is taken from the run
    directory, and an empty one means ``<application name>-ssh-host-key``.
    It is generated on first start (Ed25519, readable by the owner only).
    """

    __module__ = "tapster.plugins.console"  # the public path saved files record

    def __init__(self, endpoint: str, console: Console, authorizedKeys: str | None = None, hostKey: str = "") -> None:
        MultiService.__init__(self)
        self.endpoint = endpoint
        self.console = console
        self.authorizedKeys = authorizedKeys
        self.hostKey = hostKey

    def __repr__(self) -> str:
        return f"<ManholeService {self.name!r} on {self.endpoint} {'running' if self.running else 'stopped'}>"

    def __getstate__(self) -> dict[str, Any]:
        state = MultiService.__getstate__(self)
        for transient in ("_sock", "_server"):
            state.pop(transient, None)
        return state

    def hostKeyPath(self) -> str:
        name = self.hostKey or f"{getattr(rootOf(self), 'name', None) or 'manhole'}-ssh-host-key"
        return os.path.abspath(name)

    def privilegedStartService(self) -> None:
        MultiService.privilegedStartService(self)
        if self.__dict__.get("_sock") is None:
            from tapster.plugins._console.listen import bind

            self._sock = bind(self.endpoint)

    def startService(self) -> None:
        try:
            from tapster.plugins._console import ssh
        except ImportError as e:
            if getattr(e, "name", "") and not str(e.name).startswith("asyncssh"):
                raise
            self._close_socket()
            raise PluginError(SSH_HINT) from None
        if self.__dict__.get("_sock") is None:
            from tapster.plugins._console.listen import bind

            self._sock = bind(self.endpoint)
        try:
            key = ssh.load_or_create_host_key(self.hostKeyPath())
            _ConsoleService.startService(self)
            self._server = ssh.serve(self, self._sock, key)
        except BaseException:
            self._close_socket()
            raise

    def stopService(self) -> Any:
        result = _ConsoleService.stopService(self)
        server = self.__dict__.pop("_server", None)
        sock = self.__dict__.pop("_sock", None)
        if server is not None:
            return server.close()
        if sock is not None:
            sock.close()
        return result

    def _close_socket(self) -> None:
        sock = self.__dict__.pop("_sock", None)
        if sock is not None:
            sock.close()
