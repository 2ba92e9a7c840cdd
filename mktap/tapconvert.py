"""``tapconvert``: convert a saved application between formats, and encrypt or decrypt it.

::

    tapconvert -i qotd.tap -o qotd.yaml               # format from OUT's extension
    tapconvert -i qotd.tap -o qotd.tas -t source
    tapconvert -i qotd.tap -o qotd.etap -e            # encrypt (new passphrase asked twice)
    tapconvert -i qotd.etap -o qotd.tap -d            # decrypt
    tapconvert -i qotd.etap -o qotd.etap -e           # change the passphrase

The input's format and encryption are recognised by content. Without ``-e``
or ``-d`` the output keeps the input's encryption (and passphrase); an output
name that says otherwise (``.tap`` for an encrypted input) is refused rather
than guessed, so a secret is never written in clear by accident.

:func:`main` returns the exit status: 0 converted; 1 a file could not be
read or written (missing, corrupt, wrong passphrase, a tree YAML cannot
describe); 2 bad command line.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.core.errors import TapsterError
from tapster.core.terminal import ExitStatus, exit_status_help

__all__ = ["ConvertOptions", "main", "run", "EXIT_MEANINGS"]

PROG = "tapconvert"

#: The exit statuses tapconvert uses, as its --help documents them.
EXIT_MEANINGS = {
    ExitStatus.OK: "converted",
    ExitStatus.ERROR: "a file could not be read or written (missing, corrupt, wrong passphrase)",
    ExitStatus.USAGE: "bad command line",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C); nothing was written",
}


class ConvertOptions(usage.Options):
    synopsis = "Usage: tapconvert -i IN -o OUT [-t TYPE] [-e | -d] [--passphrase-file FILE]"
    programName = PROG
    longdesc = (
        "Converts a saved application between the formats pickle (.tap), xml (.tax), "
        "source (.tas) and yaml (.yaml), and encrypts (-e) or decrypts (-d) it. The input's "
        "format and encryption are recognised by content; without -e or -d the output keeps "
        "the input's encryption and passphrase.\n\n"
        + exit_status_help(EXIT_MEANINGS)
    )
    optParameters = [
        ["in", "i", None, "The application file to read (any format, encrypted or not)."],
        ["out", "o", None, "The file to write (atomically; it may be IN itself)."],
        ["typein", "f", None, "Format of IN when its content cannot tell (default: recognised)."],
        [
            "typeout",
            "t",
            None,
            "Format of OUT: pickle, xml, source or yaml (default: OUT's extension, else IN's format).",
        ],
        [
            "passphrase-file",
            None,
            None,
            "Read the passphrase from the first line of FILE instead of asking; used for IN and OUT.",
        ],
    ]
    optFlags = [
        ["encrypt", "e", "Encrypt OUT (a new passphrase is asked twice, unless --passphrase-file)."],
        ["decrypt", "d", "Write OUT in clear."],
        ["debug", None, "Show full tracebacks."],
    ]

    def postOptions(self) -> None:
        for key in ("in", "out"):
            if not self[key]:
                raise usage.UsageError(f"--{key} is required: tapconvert -i IN -o OUT [-t TYPE]")
        if self["encrypt"] and self["decrypt"]:
            raise usage.UsageError("-e/--encrypt and -d/--decrypt exclude each other: choose one")
        from tapster.core.plugin import format_specs

        formats = format_specs()
        for key in ("typein", "typeout"):
            if self[key] is not None and self[key] not in formats:
                raise usage.UsageError(
                    f"unknown format {self[key]!r} for --{key}: choose one of {', '.join(sorted(formats))}"
                )


def _say(message: str) -> None:
    from tapster.core.terminal import one_line

    print(f"{PROG}: {one_line(message)}", file=sys.stderr)


def convert(opts: Any) -> str:
    """Do the conversion ``opts`` describes; returns the line reporting it."""
    from tapster.core import persist
    from tapster.core.terminal import obtain_passphrase as obtain

    source, target = opts["in"], opts["out"]
    in_encrypted = persist.is_encrypted(source)
    passphrase_in = None
    if in_encrypted:
        passphrase_in = obtain(opts["passphrase-file"], f"Passphrase for {source}: ", confirm=False)
    app = persist.load(source, kind=opts["typein"], passphrase=passphrase_in)
    in_spec = persist.format_for(getattr(app, "persistStyle", None))

    named, named_encrypted = persist.named_format(target)
    out_spec = persist.format_for(opts["typeout"]) if opts["typeout"] else (named or in_spec)
    if opts["encrypt"]:
        out_encrypted = True
    elif opts["decrypt"]:
        out_encrypted = False
    else:
        out_encrypted = in_encrypted
        if named is not None and named_encrypted != in_encrypted:
            if in_encrypted:
                raise usage.UsageError(
                    f"{source} is encrypted but {target} is named like a file in clear: "
                    f"add -d to write it decrypted, or name it .{persist.extension_for(out_spec, True)}"
                )
            raise usage.UsageError(
                f"{target} is named like an encrypted file but {source} is not encrypted: "
                f"add -e to encrypt it, or name it .{persist.extension_for(out_spec)}"
            )
    passphrase_out = None
    if out_encrypted:
        if opts["encrypt"] and opts["passphrase-file"] is None:
            passphrase_out = obtain(None, f"New passphrase for {target}: ", confirm=True)
        else:
            passphrase_out = passphrase_in if passphrase_in is not None else obtain(
                opts["passphrase-file"], f"New passphrase for {target}: ", confirm=True)
    persist.save(app, target, out_spec.name, passphrase=passphrase_out)

    def how(spec: Any, encrypted: bool) -> str:
        return spec.name + (", encrypted" if encrypted else "")

    return f"wrote {target} ({how(out_spec, out_encrypted)}) from {source} ({how(in_spec, in_encrypted)})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run tapconvert with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = ConvertOptions()
    try:
        opts.parseOptions(argv or ["--help"])
    except usage.UsageError as e:
        _say(f"{e} (see tapconvert --help)")
        return ExitStatus.USAGE
    except SystemExit as e:
        return int(e.code or 0)
    try:
        _say(convert(opts))
    except usage.UsageError as e:
        _say(str(e))
        return ExitStatus.USAGE
    except TapsterError as e:
        if opts["debug"]:
            traceback.print_exc()
        _say(str(e))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)
        _say("interrupted; nothing was written")
        return ExitStatus.INTERRUPTED
    except Exception as e:  # a bug, or a class in the file misbehaving: still one line, nothing half written
        if opts["debug"]:
            traceback.print_exc()
        hint = "" if opts["debug"] else " (run tapconvert --debug for the traceback)"
        _say(f"could not convert {opts['in']}: {type(e).__name__}: {e}; nothing was written{hint}")
        return ExitStatus.ERROR
    return ExitStatus.OK


def run() -> None:
    """Console-script entry point."""
    from tapster.core.terminal import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
