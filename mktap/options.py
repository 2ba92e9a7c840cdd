"""mktap's own options (those before the plugin name)."""

from __future__ import annotations

import sys
from typing import Sequence

from core import usage

__all__ = ["MkTapOptions", "split_argv", "SYNOPSIS"]

SYNOPSIS = "Usage: mktap [options] <plugin> [plugin options]"


def _id(value: str) -> int | str:
    """A user or group as given: numbers become ints, names stay names (resolved by twistd)."""
    value = value.strip()
    if not value:
        raise ValueError("must be a user or group name or a number")
    return int(value) if value.isdigit() else value


_id.coerceDoc = "A name or a number."  # type: ignore[attr-defined]


class MkTapOptions(usage.Options):
    synopsis = SYNOPSIS
    longdesc = (
        "Builds an application from a plugin and saves it to a file that twistd runs: "
        "mktap qotd --port 8007 writes qotd.tap; twistd -f qotd.tap serves it. "
        "Run mktap <plugin> --help for a plugin's own options.\n\n"
        "Exit status:\n"
        "  0  the application was saved\n"
        "  1  the plugin could not build it, or the file could not be written\n"
        "  2  bad command line (unknown plugin or option, bad value)"
    )
    optFlags = [
        ["debug", "d", "Show plugin-loading details and full tracebacks."],
    ]
    optParameters = [
        ["type", "t", "pickle", "Format of the saved application (pickle)."],
        ["appname", "n", None, "Name of the application (default: the plugin's name); names its files."],
        ["output", "o", None, "Write to FILE (default: ./<appname>.<ext>)."],
        ["uid", "u", None, "User to run as (name or number), applied by twistd after binding ports.", _id],
        ["gid", "g", None, "Group to run as (name or number).", _id],
    ]

    def opt_help(self) -> None:
        """Display this help, with the list of installed plugins, and exit."""
        from core._console import print_table
        from core.plugin import plugin_rows

        print(str(self), file=sys.stdout)
        rows = plugin_rows()
        if rows:
            print_table("Plugins:", ("plugin", "description"), rows, sys.stdout)
        else:
            print("No plugins are installed.")
        sys.exit(0)

    opt_h = opt_help


def split_argv(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """Split ``argv`` into (mktap's options, plugin name, plugin's arguments).

    The plugin name is the first argument that is neither an option nor the
    value of one of mktap's own options.
    """
    takes_value_long = {p[0] for p in MkTapOptions.optParameters}
    takes_value_short = {p[1] for p in MkTapOptions.optParameters if p[1]}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            name = argv[i + 1] if i + 1 < len(argv) else None
            return list(argv[:i]), name, list(argv[i + 2:])
        if arg.startswith("--"):
            if "=" not in arg and arg[2:].replace("-", "_") in takes_value_long | {n.replace("-", "_") for n in takes_value_long}:
                i += 1
        elif arg.startswith("-") and len(arg) > 1:
            for j, letter in enumerate(arg[1:], start=1):
                if letter in takes_value_short:
                    if j == len(arg) - 1:
                        i += 1
                    break
        else:
            return list(argv[:i]), arg, list(argv[i + 1:])
        i += 1
    return list(argv), None, []
