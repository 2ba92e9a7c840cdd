"""The telnet console: a live Python shell inside the running application.

``mktap --append qotd.tap telnet --port 4040 --password-file admin.pw``, then
``telnet 127.0.0.1 4040``: after logging in, ``application`` is the live
service tree. The pieces live in :mod:`tapster.plugins._console`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapster.plugins._console.options import ConsoleOptions

if TYPE_CHECKING:
    from tapster.plugins._console.service import TelnetService

__all__ = ["Options", "makeService", "description", "safeNames"]

description = "A Python shell inside the running application, over telnet (loopback only by default)."

#: What an application file from a stranger (XML) may name of this plugin: the console's saved
#: parts (by their public paths, tapster.plugins.console). Nothing of the shell itself: its
#: methods run code, and a file must never be able to hand them to a service.
safeNames = (
    "tapster.plugins.console.TelnetService",
    "tapster.plugins.console.TelnetShellFactory",
    "tapster.plugins.console.Console",
)


class Options(ConsoleOptions):
    synopsis = "[-p PORT] [--interface ADDR] [-u USER] (--password-file FILE | -w PASSWORD)"
    longdesc = (
        "Adds an administrator's console: telnet to the port, log in, and type Python in the running "
        "server. 'application' is the live service tree: changes take effect at once, and "
        "application.save('known-good') writes them to <app>-known-good.tap. There is no default "
        "password; only a salted scrypt hash of it is stored in the application.\n"
        "\n"
        "Telnet sends the password, and everything typed, in clear text. Keep the console on "
        "the loopback interface (the default) or use the SSH console (mktap manhole) instead. "
        "After three failed logins the connection is closed and later attempts from that address "
        "are slowed down; every login and every statement is logged with the peer's address."
    )
    optParameters = ConsoleOptions.consoleParameters("4040")


def makeService(config: Options) -> TelnetService:
    """A telnet console on ``--port`` (bound to ``--interface``) with the configured credentials."""
    from tapster.plugins._console.console import Console
    from tapster.plugins._console.service import TelnetService

    console = Console(
        config["username"],
        config["password-hash"],
        idleTimeout=config["idle-timeout"],
        maxSessions=config["max-sessions"],
    )
    return TelnetService(config["endpoint"], console)
