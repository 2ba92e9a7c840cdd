"""``tap2unit``: the systemd unit (and socket units) that run an application file with twistd.

::

    tap2unit -t qotd.tap                       # print tapster-qotd.service
    tap2unit -t qotd.tap -d /etc/systemd/system --user qotd
    tap2unit -t qotd.tap --socket-activation -d units/

For users who install tapster with pip: ``ExecStart`` names the ``twistd`` of
this environment (``--prefix``) and the file where it will be installed
(``--installed-as``, default ``/etc/<app>/<file>``). :func:`main` returns the
exit status: 0 written; 1 the file could not be read or the unit written;
2 bad command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.core.terminal import ExitStatus, exit_status_help
from tapster.mktap import _deploy
from tapster.mktap._units import UnitSettings, service_unit, socket_units, unit_name

__all__ = ["UnitOptions", "main", "run", "settings_from", "EXIT_MEANINGS"]

PROG = "tap2unit"

EXIT_MEANINGS = {
    ExitStatus.OK: "written",
    ExitStatus.ERROR: "the application could not be read, or cannot run as a unit as asked; nothing written",
    ExitStatus.USAGE: "bad command line",
}

unit_parameters: list[list[Any]] = [
    ["user", "u", None, "Run as this system user (default: the application's uid, else DynamicUser=yes)."],
    ["description", None, None, "The unit's Description= (default: tapster application <app>)."],
    ["watchdog", None, "0", "WatchdogSec= (twistd sends WATCHDOG=1 from the reactor); 0: none."],
]
unit_flags: list[list[Any]] = [
    ["socket-activation", None, "Also write one .socket unit per listening port (systemd binds them)."],
    ["no-capabilities", None, "Never grant CAP_NET_BIND_SERVICE: refuse ports below 1024 instead."],
    ["dynamic-user", None, "DynamicUser=yes even when the application names a user."],
]


class UnitOptions(usage.Options):
    synopsis = "Usage: tap2unit -t FILE [-d DIR] [--user NAME] [--socket-activation] [--health ENDPOINT]"
    programName = PROG
    longdesc = (
        "Prints (or writes to DIR) the systemd service unit running the application FILE with twistd "
        "(Type=notify, reload on SIGHUP, hardened, a system or dynamic user, CAP_NET_BIND_SERVICE for ports "
        "below 1024), and with --socket-activation a .socket unit per port.\n\n" + exit_status_help(EXIT_MEANINGS)
    )
    optParameters = [
        *_deploy.common_parameters,
        *unit_parameters,
        ["prefix", None, sys.prefix, "The environment whose bin/twistd runs the application."],
        ["installed-as", None, None, "Where the application file will be (default /etc/<app>/<file>)."],
        ["output-dir", "d", None, "Write the unit files into DIR instead of printing them."],
    ]
    optFlags = [*_deploy.common_flags, *unit_flags]


def settings_from(opts: Any, deployment: _deploy.Deployment, prefix: str, generator: str,
                  default_user: str | None = None) -> UnitSettings:
    """The unit settings the shared options ask for."""
    _deploy.check_health(opts)
    user = opts["user"]
    if user is None and not opts["dynamic-user"]:
        user = str(deployment.uid) if deployment.uid is not None else default_user
    if opts["dynamic-user"]:
        user = None
    if user is not None and not _valid_user(user):
        raise usage.UsageError(f"--user {user!r} is not a valid user name (lowercase letters, digits, - and _)")
    installed = opts.get("installed-as") or f"/etc/{deployment.name}/{deployment.filename}"
    return UnitSettings(
        prefix=prefix,
        config_path=installed,
        user=user,
        description=opts["description"] or "",
        health=opts["health"],
        shutdown_timeout=_deploy.seconds(opts, "shutdown-timeout"),
        drain_time=_deploy.seconds(opts, "drain-time"),
        stateless=bool(opts["stateless"]),
        socket_activation=bool(opts["socket-activation"]),
        capabilities=not opts["no-capabilities"],
        watchdog=_deploy.seconds(opts, "watchdog"),
        generator=generator,
    )


def _valid_user(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name)) or name.isdigit()


def unit_files(opts: Any, deployment: _deploy.Deployment, prefix: str, generator: str,
               default_user: str | None = None) -> dict[str, str]:
    settings = settings_from(opts, deployment, prefix, generator, default_user)
    files = {f"{unit_name(deployment)}.service": service_unit(deployment, settings)}
    files.update(socket_units(deployment, settings))
    return files


def generate(opts: Any) -> str:
    deployment = _deploy.read_deployment(opts["tapfile"], opts["passphrase-file"])
    files = unit_files(opts, deployment, opts["prefix"], PROG)
    directory = opts["output-dir"]
    if directory is None:
        for i, (name, text) in enumerate(files.items()):
            if len(files) > 1:
                sys.stdout.write(("\n" if i else "") + f"# ==> {name} <==\n")
            sys.stdout.write(text)
        sys.stdout.flush()
        return ""
    if not os.path.isdir(directory):
        raise _deploy.DeployError(f"{directory} is not a directory")
    for name, text in files.items():
        _deploy.write_text_atomically(os.path.join(directory, name), text)
    return "wrote " + ", ".join(os.path.join(directory, n) for n in files)


def main(argv: Sequence[str] | None = None) -> int:
    """Run tap2unit with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return _deploy.run_command(PROG, UnitOptions(), generate, argv)


def run() -> None:
    """Console-script entry point."""
    _deploy.run_exit(main)
