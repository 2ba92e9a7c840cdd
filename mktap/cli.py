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
from typing import Any, Sequence

from core import usage
from core.errors import PluginError, TapsterError

__all__ = ["main", "run", "build", "make_service"]

PROG = "mktap"

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


class _CommandLineError(TapsterError):
    """mktap's own options do not fit together (found once the --append file is known)."""


class _Parent:
    """Stands in as the plugin Options' ``parent`` so its usage reads ``mktap [options] qotd ...``."""

    def __init__(self, plugin: str, prog: str = PROG) -> None:
        self.subCommand = plugin
        self.prog = prog

    def getSynopsis(self) -> str:
        return f"Usage: {self.prog} [options]"

    def _commandName(self) -> str:
        return self.prog


def make_service(plugin: str, plugin_argv: Sequence[str], prog: str = PROG, reporter: Any = None) -> tuple[Any, dict]:
    """Load ``plugin``, parse ``plugin_argv`` with its Options and call its makeService.

    Returns the service and its recipe (plugin name and the options given,
    by long name), which :func:`core._yaml_format.attach` keeps on the service.
    """
    from core._yaml_format import recipe_for
    from core.plugin import find_plugin
    from mktap.progress import Reporter

    reporter = reporter or Reporter(prog)
    with reporter.step(f"finding plugin {plugin}"):
        entry = find_plugin(plugin)
    if entry.others:
        reporter.warn(
            f"plugin {plugin!r} is provided by {entry.distribution} and also by {', '.join(entry.others)}; "
            f"using {entry.distribution} (uninstall one of them to silence this)"
        )
    reporter.note(f"plugin {plugin}: entry point {entry.value!r} of {entry.distribution} {entry.version}".rstrip())
    with reporter.step(f"importing plugin {plugin}"):
        maker = entry.load()
    where = getattr(maker.module, "__file__", None) or getattr(maker.module, "__module__", "?")
    reporter.note(f"plugin {plugin}: imported from {where}")
    with reporter.step("parsing the plugin's options"):
        config = maker.options()
        config.parent = _Parent(plugin, prog)
        config.parseOptions(list(plugin_argv))
    with reporter.step(f"building the {plugin} service"):
        service = maker.makeService(config)
    recipe = recipe_for(plugin, config, plugin_argv)
    reporter.note(f"plugin {plugin}: built {type(service).__module__}.{type(service).__qualname__}; recipe {recipe}")
    return service, recipe


def build(plugin: str, plugin_argv: Sequence[str], appname: str | None = None,
          uid: int | str | None = None, gid: int | str | None = None, prog: str = PROG) -> Any:
    """Parse ``plugin_argv`` with the plugin's Options and return a new Application holding its service.

    ``prog`` names the command in the plugin's ``--help`` (``twistd qotd --help``
    builds through here too).
    """
    from core._yaml_format import attach
    from core.service import Application

    service, recipe = make_service(plugin, plugin_argv, prog)
    app = Application(appname or plugin, uid, gid)
    attach(app, service, recipe)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run mktap with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from mktap.options import MkTapOptions, split_argv
    from mktap.progress import Reporter

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
    reporter = Reporter(PROG, progress=bool(opts["progress"]), debug=debug,
                        total=6 if opts["append"] else 5)
    try:
        return _make(opts, plugin, rest, reporter)
    except SystemExit as e:  # the plugin's --help
        return int(e.code or 0)
    except _CommandLineError as e:
        _fail(f"{e} (see mktap --help)")
        return EXIT_USAGE
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
    except KeyboardInterrupt:
        reporter.stop()
        print(file=sys.stderr)
        _fail("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    except Exception as e:  # the plugin's makeService raised: its bug or bad input it did not check
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run mktap --debug for the traceback)"
        _fail(f"{plugin}: could not build the application: {type(e).__name__}: {e}{hint}")
        return EXIT_ERROR
    finally:
        reporter.stop()


def _stem(filename: str) -> str:
    """``site`` for ``dir/site.etap``: the application name a new --append file implies."""
    return os.path.splitext(os.path.basename(filename))[0] or "app"


def _make(opts: Any, plugin: str, rest: list[str], reporter: Any) -> int:
    from core import persist
    from core._yaml_format import attach
    from core.service import Application
    from mktap.passphrase import obtain

    service, recipe = make_service(plugin, rest, reporter=reporter)
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
            passphrase = obtain(opts["passphrase-file"], f"Passphrase for {target}: ", confirm=False)
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
            passphrase = obtain(opts["passphrase-file"], f"New passphrase for {output}: ", confirm=True)
    attach(app, service, recipe)
    with reporter.step(f"saving {output}"):
        persist.save(app, output, spec.name, passphrase=passphrase)
    reporter.stop()
    how = spec.name + (", encrypted" if passphrase is not None else "")
    if appending:
        names = ", ".join(s.name for s in app)
        print(f"{PROG}: added {service.name} to {output} ({how}; services: {names})", file=sys.stderr)
    else:
        print(f"{PROG}: wrote {output} ({how}); run it with: twistd -n -f {output}", file=sys.stderr)
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    from core._console import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
