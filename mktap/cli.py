"""``mktap``: build an application from a plugin and save it.

:func:`main` is the one place where errors become a message and an exit status:
    0 saved; 1 the plugin failed to build or the file could not be written;
    2 bad command line (unknown plugin, bad option).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Sequence

from core import usage
from core.errors import PluginError, TapsterError

__all__ = ["main", "run", "build"]

PROG = "mktap"

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


class _Parent:
    """Stands in as the plugin Options' ``parent`` so its usage reads ``mktap [options] qotd ...``."""

    def __init__(self, plugin: str, prog: str = PROG) -> None:
        self.subCommand = plugin
        self.prog = prog

    def getSynopsis(self) -> str:
        return f"Usage: {self.prog} [options]"

    def _commandName(self) -> str:
        return self.prog


def build(plugin: str, plugin_argv: Sequence[str], appname: str | None = None,
          uid: int | str | None = None, gid: int | str | None = None, prog: str = PROG) -> Any:
    """Parse ``plugin_argv`` with the plugin's Options and return a new Application holding its service.

    ``prog`` names the command in the plugin's ``--help`` (``twistd qotd --help``
    builds through here too).
    """
    from core.plugin import load_plugin
    from core.service import Application

    maker = load_plugin(plugin)
    config = maker.options()
    config.parent = _Parent(plugin, prog)
    config.parseOptions(list(plugin_argv))
    service = maker.makeService(config)
    app = Application(appname or plugin, uid, gid)
    if getattr(service, "name", None) is None:
        service.setName(plugin)
    service.setServiceParent(app)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run mktap with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from mktap.options import MkTapOptions, split_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    own, plugin, rest = split_argv(argv)
    if not argv:
        own = ["--help"]  # no arguments at all: show the usage and the plugins
    opts = MkTapOptions()
    try:
        opts.parseOptions(own)
    except usage.UsageError as e:
        _fail(f"{e} (see mktap --help)")
        return EXIT_USAGE
    except SystemExit as e:
        return int(e.code or 0)
    if plugin is None:
        _fail("no plugin given: mktap <plugin> [options], e.g. mktap qotd --port 8007 (mktap --help lists them)")
        return EXIT_USAGE
    debug = bool(opts["debug"])
    try:
        return _make(opts, plugin, rest)
    except SystemExit as e:  # the plugin's --help
        return int(e.code or 0)
    except usage.UsageError as e:
        text = str(e)
        _fail(f"{plugin}: {text}" + ("" if "--help" in text else f" (see mktap {plugin} --help)"))
        return EXIT_USAGE
    except PluginError as e:
        if debug:
            traceback.print_exc()
        _fail(str(e))
        return EXIT_USAGE if str(e).startswith("unknown plugin") else EXIT_ERROR
    except TapsterError as e:
        if debug:
            traceback.print_exc()
        _fail(str(e))
        return EXIT_ERROR
    except Exception as e:  # the plugin's makeService raised: its bug or bad input it did not check
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run mktap --debug for the traceback)"
        _fail(f"{plugin}: could not build the application: {type(e).__name__}: {e}{hint}")
        return EXIT_ERROR


def _make(opts: Any, plugin: str, rest: list[str]) -> int:
    from core import persist

    spec = persist.format_for(opts["type"])
    app = build(plugin, rest, appname=opts["appname"], uid=opts["uid"], gid=opts["gid"])
    app.persistStyle = spec.name
    output = opts["output"] or f"{app.name}.{spec.extension}"
    persist.save(app, output, spec.name)
    print(f"{PROG}: wrote {output} ({spec.name}); run it with: twistd -n -f {output}", file=sys.stderr)
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    from core._console import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
