"""The SSH console ("manhole"): the telnet console's shell, over SSH with asyncssh.

Needs the optional extra: ``pip install 'tapster[ssh]'``. asyncssh is
imported only when the service is built or started, so listing plugins
stays fast and works without it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tapster.core import usage
from tapster.plugins._console.options import ConsoleOptions

if TYPE_CHECKING:
    from tapster.plugins._console.service import ManholeService

__all__ = ["Options", "makeService", "description", "safeNames"]

description = "A Python shell inside the running application, over SSH (needs tapster[ssh])."

#: What an application file from a stranger (XML) may name of this plugin (see the telnet plugin).
safeNames = ("tapster.plugins.console.ManholeService", "tapster.plugins.console.Console")


class Options(ConsoleOptions):
    synopsis = "[-p PORT] [--interface ADDR] [-u USER] [--authorized-keys FILE] [--password-file FILE]"
    longdesc = (
        "Adds an administrator's console reachable with ssh: ssh -p PORT admin@127.0.0.1 gives a "
        "Python prompt in the running server, where 'application' is the live service tree "
        "(see mktap telnet --help for the workflow). Log in with a key listed in --authorized-keys "
        "(OpenSSH format, read again at every login) and/or the password; only a salted hash of "
        "the password is stored. The host key is generated on first start, in the run directory "
        "(<app>-ssh-host-key unless --host-key says otherwise), and kept for later starts. "
        "Needs asyncssh: pip install 'tapster[ssh]'."
    )
    passwordRequired = False
    optParameters = ConsoleOptions.consoleParameters("4041") + [
        ["authorized-keys", "k", None, "An OpenSSH authorized_keys file with the keys that may log in."],
        ["host-key", None, "", "The host key file (generated when missing); relative to the run directory. "
                               "Default: <app>-ssh-host-key."],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        keys = self["authorized-keys"]
        if keys is None and self["password-hash"] is None:
            raise usage.UsageError(
                "nobody could log in: give --authorized-keys FILE and/or --password-file FILE (there is no default)"
            )
        if keys is not None:
            if not os.path.isfile(keys) or not os.access(keys, os.R_OK):
                raise usage.UsageError(f"--authorized-keys {keys}: not a readable file")
            self["authorized-keys"] = os.path.abspath(keys)  # twistd may run from another directory
        from tapster.core.endpoints import EndpointError
        from tapster.plugins._console.listen import check_endpoint

        try:
            check_endpoint(self["endpoint"])
        except EndpointError as e:
            raise usage.UsageError(f"--port: {e}") from None


def makeService(config: Options) -> ManholeService:
    """An SSH console; raises a clear error when asyncssh is not installed."""
    from tapster.core.errors import PluginError
    from tapster.plugins._console.console import Console
    from tapster.plugins._console.service import SSH_HINT, ManholeService

    try:
        import asyncssh
    except ImportError:
        raise PluginError(SSH_HINT) from None
    keys = config["authorized-keys"]
    if keys is not None:
        try:
            asyncssh.read_authorized_keys(keys)
        except (OSError, ValueError) as e:
            raise usage.UsageError(f"--authorized-keys {keys}: {e}") from None
    console = Console(
        config["username"],
        config["password-hash"],
        idleTimeout=config["idle-timeout"],
        maxSessions=config["max-sessions"],
    )
    return ManholeService(config["endpoint"], console, authorizedKeys=keys, hostKey=config["host-key"])
