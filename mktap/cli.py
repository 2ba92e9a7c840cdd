"""``mktap``: build an application from a plugin and save it.

:func:`main` is the one place where errors become a message and an exit status:
    0 saved; 1 the plugin failed to build, or a file could not be read or
    written (missing, corrupt, wrong passphrase); 2 bad command line (unknown
    plugin, bad option).

The order of work is deliberate: the plugin's options are parsed and its
service built *before* any passphrase is asked or any file is touched, so a
typo in an option costs no prompt; the file is written once, atomically, at
the very end, so a failure anywhere leaves what was on disk as it was.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.core.errors import PluginError, TapsterError, UnknownPluginError
from tapster.core.terminal import ExitStatus

__all__ = ["main", "run"]

PROG = "mktap"



def _fail(message: str) -> None:
    from tapster.core.terminal import one_line

    print(f"{PROG}: {one_line(message)}", file=sys.stderr)


class _CommandLineError(TapsterError):
    """mktap's own options do not fit together (found once the --append file is known)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run mktap with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from tapster.mktap.options import MkTapOptions, split_argv
    from tapster.mktap.progress import Reporter

    argv = list(sys.argv[1:] if argv is None else argv)
    own, plugin, rest = split_argv(argv)
    if not argv:
        own = ["--help"]  # no arguments at all: show the usage and the plugins
    opts = MkTapOptions()
    try:
        opts.parseOptions(own)
    except usage.UsageError as e:
        _fail(f"{e} (see mktap --help)")
        return ExitStatus.USAGE
    except SystemExit as e:
        return int(e.code or 0)
    if plugin is None:
        _fail("no plugin given: mktap <plugin> [options], e.g. mktap qotd --port 8007 (mktap --help lists them)")
        return ExitStatus.USAGE
    debug = bool(opts["debug"])
    reporter = Reporter(PROG, progress=bool(opts["progress"]), debug=debug,
                        total=6 if opts["append"] else 5)
    try:
        return _make(opts, plugin, rest, reporter)
    except SystemExit as e:  # the plugin's --help
        return int(e.code or 0)
    except _CommandLineError as e:
        _fail(f"{e} (see mktap --help)")
        return ExitStatus.USAGE
    except usage.UsageError as e:
        text = str(e)
        _fail(f"{plugin}: {text}" + ("" if "--help" in text else f" (see mktap {plugin} --help)"))
        return ExitStatus.USAGE
    except UnknownPluginError as e:  # before PluginError: a typo on the command line, not a broken plugin
        _fail(str(e))
        return ExitStatus.USAGE
    except PluginError as e:
        if debug:
            traceback.print_exc()
        _fail(str(e))
        return ExitStatus.ERROR
    except TapsterError as e:
        if debug:
            traceback.print_exc()
        _fail(str(e))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        reporter.stop()
        print(file=sys.stderr)
        _fail("interrupted; nothing was written")
        return ExitStatus.INTERRUPTED
    except Exception as e:  # the plugin's makeService raised: its bug or bad input it did not check
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run mktap --debug for the traceback)"
        _fail(f"{plugin}: could not build the application: {type(e).__name__}: {e}{hint}")
        return ExitStatus.ERROR
    finally:
        reporter.stop()


def _stem(filename: str) -> str:
    """``site`` for ``dir/site.etap``: the application name a new --append file implies."""
    return os.path.splitext(os.path.basename(filename))[0] or "app"


def _make(opts: Any, plugin: str, rest: list[str], reporter: Any) -> int:
    from tapster.core.plugin import make_service

    service, recipe = make_service(plugin, rest, PROG, reporter)
    try:
        return _save(opts, plugin, service, recipe, reporter)
    except (TapsterError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # the plugin built its service; what failed is loading or writing the file
        target = opts["append"] or opts["output"] or "the application file"
        raise _SaveError(f"could not finish {target}: {type(e).__name__}: {e}; nothing was written") from e


class _SaveError(TapsterError):
    """The service was built, but the file could not be loaded, extended or written (not the plugin's fault)."""


def _save(opts: Any, plugin: str, service: Any, recipe: dict[str, Any], reporter: Any) -> int:
    from tapster.core import persist
    from tapster.core.plugin import attach
    from tapster.core.service import Application
    from tapster.core.terminal import obtain_passphrase

    target = opts["append"]
    appending = target is not None and os.path.exists(target)
    if appending:
        encrypted = persist.is_encrypted(target)
        if opts["type"] is not None:
            raise _CommandLineError(
                f"--append saves {target} in its own format, so -t/-x/-s cannot change it; "
                f"convert it with tapconvert -i {target} -o NEWFILE -t {opts['type']}"
            )
        if opts["encrypted"] and not encrypted:
            raise _CommandLineError(
                f"{target} is not encrypted and --append keeps it as it is; encrypt it with tapconvert -e"
            )
        passphrase = None
        if encrypted:
            reporter.pause()
            passphrase = obtain_passphrase(opts["passphrase-file"], f"Passphrase for {target}: ", confirm=False)
        with reporter.step(f"loading {target}"):
            app = persist.load(target, passphrase=passphrase)
        spec = persist.format_for(app.persistStyle)
        if opts["appname"]:
            app.name = app.processName = opts["appname"]
        for key in ("uid", "gid"):
            if opts[key] is not None:
                setattr(app, key, opts[key])
        output = opts["output"] or target
    else:
        named = target or opts["output"]
        spec = persist.format_for(opts["type"], named)
        encrypted = bool(opts["encrypted"]) or (named is not None and persist.is_encrypted_name(named))
        appname = opts["appname"] or (_stem(target) if target else plugin)
        app = Application(appname, opts["uid"], opts["gid"])
        output = opts["output"] or target or f"{app.name}.{persist.extension_for(spec, encrypted)}"
        passphrase = None
        if encrypted:
            reporter.pause()
            passphrase = obtain_passphrase(opts["passphrase-file"], f"New passphrase for {output}: ", confirm=True)
    attach(app, service, recipe)
    with reporter.step(f"saving {output}"):
        persist.save(app, output, spec.name, passphrase=passphrase)
    reporter.stop()
    how = spec.name + (", encrypted" if passphrase is not None else "")
    if appending:
        names = ", ".join(str(s.name) for s in app)
        print(f"{PROG}: added {service.name} to {output} ({how}; services: {names})", file=sys.stderr)
    else:
        print(f"{PROG}: wrote {output} ({how}); run it with: twistd -n -f {output}", file=sys.stderr)
    return ExitStatus.OK


def run() -> None:
    """Console-script entry point."""
    from tapster.core.terminal import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
