"""mktap's own options (those before the plugin name)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

from tapster.core import usage
from tapster.core.terminal import ExitStatus, exit_status_help

__all__ = ["MkTapOptions", "split_argv", "SYNOPSIS"]

SYNOPSIS = "Usage: mktap [options] <plugin> [plugin options]"

#: The exit statuses mktap uses, as its --help documents them.
EXIT_MEANINGS = {
    ExitStatus.OK: "the application was saved",
    ExitStatus.ERROR: "the plugin could not build it, or a file could not be read or written\n"
                      "(missing, corrupt, wrong passphrase)",
    ExitStatus.USAGE: "bad command line (unknown plugin or option, bad value)",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C); nothing was written",
}


def _id(value: str) -> int | str:
    """A user or group as given: numbers become ints, names stay names (resolved by twistd)."""
    value = value.strip()
    if not value:
        raise ValueError("must be a user or group name or a number")
    return int(value) if value.isdigit() else value


_id.coerceDoc = "A name or a number."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


class MkTapOptions(usage.Options):
    synopsis = SYNOPSIS
    longdesc = (
        "Builds an application from a plugin and saves it to a file that twistd runs: "
        "mktap qotd --port 8007 writes qotd.tap; twistd -f qotd.tap serves it. "
        "Run mktap <plugin> --help for a plugin's own options.\n\n"
        "Formats (--type): pickle (.tap, the default), xml (.tax), source (.tas), yaml (.yaml, "
        "a hand-editable recipe of plugins and options). With -e the file is encrypted "
        "(.etap, .etax, .etas, .eyaml). --append adds a service to an existing file and keeps "
        "its format and encryption.\n\n"
        + exit_status_help(EXIT_MEANINGS)
    )
    optFlags = [
        ["xml", "x", "Same as --type xml."],
        ["source", "s", "Same as --type source."],
        ["encrypted", "e", "Encrypt the file with a passphrase, asked twice without echo."],
        ["progress", "p", "Show progress while the plugin loads and the application is built."],
        ["debug", "d", "Show plugin-loading details and full tracebacks."],
    ]
    optParameters = [
        ["type", "t", None, "Format of the saved application: pickle (the default), xml, source or yaml."],
        ["append", "a", None,
         "Add the plugin's service to the application in FILE (any format, decrypted if needed) "
         "and save it back there in its own format and encryption; a FILE that does not exist "
         "yet starts a new application."],
        ["passphrase-file", None, None,
         "Read the passphrase from the first line of FILE instead of asking (for scripts); implies -e."],
        ["appname", "n", None, "Name of the application (default: the plugin's name); names its files."],
        ["output", "o", None, "Write to FILE (default: ./<appname>.<ext>, or the --append FILE)."],
        ["uid", "u", None, "User to run as (name or number), applied by twistd after binding ports.", _id],
        ["gid", "g", None, "Group to run as (name or number).", _id],
    ]

    def opt_help(self) -> NoReturn:
        """Display this help, with the list of installed plugins, and exit."""
        from tapster.core.plugin import plugin_rows
        from tapster.core.terminal import print_table

        print(str(self), file=sys.stdout)
        rows = plugin_rows()
        if rows:
            print_table("Plugins:", ("plugin", "description"), rows, sys.stdout)
        else:
            print("No plugins are installed.")
        sys.exit(0)

    opt_h = opt_help

    def postOptions(self) -> None:
        """One format from --type, -x and -s, and one the installed format hooks know."""
        chosen = [value for value in (self["type"], "xml" if self["xml"] else None,
                                      "source" if self["source"] else None) if value]
        if len(set(chosen)) > 1:
            raise usage.UsageError(
                f"choose one format: --type, -x/--xml and -s/--source ask for {' and '.join(chosen)}"
            )
        self["type"] = chosen[0] if chosen else None
        if self["type"] is not None:
            from tapster.core.plugin import format_specs

            formats = format_specs()
            if self["type"] not in formats:
                import difflib

                close = difflib.get_close_matches(self["type"], list(formats), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise usage.UsageError(
                    f"unknown format {self['type']!r} for --type{hint}: choose one of {', '.join(sorted(formats))}"
                )
        if self["passphrase-file"] is not None:
            self["encrypted"] = True


def _long_names() -> tuple[set[str], set[str]]:
    """(every long option of mktap, those that take a value), dashes and underscores alike."""
    norm = lambda name: name.replace("_", "-")  # noqa: E731
    values = {norm(p[0]) for p in MkTapOptions.optParameters}
    flags = {norm(f[0]) for f in MkTapOptions.optFlags} | {"help", "version"}
    return values | flags, values


def _takes_value(option: str) -> bool:
    """Whether ``--option`` (typed without ``=value``) consumes the next argument: exact or unique prefix."""
    every, values = _long_names()
    name = option.replace("_", "-")
    if name in every:
        return name in values
    matches = [n for n in every if n.startswith(name)]
    return len(matches) == 1 and matches[0] in values


def split_argv(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """Split ``argv`` into (mktap's options, plugin name, plugin's arguments).

    The plugin name is the first argument that is neither an option nor the
    value of one of mktap's own options (long options may be abbreviated, as
    the parser allows: ``--out x.tap``).
    """
    takes_value_short = {p[1] for p in MkTapOptions.optParameters if p[1]}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            name = argv[i + 1] if i + 1 < len(argv) else None
            return list(argv[:i]), name, list(argv[i + 2:])
        if arg.startswith("--"):
            if "=" not in arg and _takes_value(arg[2:]):
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
