"""Building an application from plugins: the one place mktap, twistd and YAML recipes share.

``mktap qotd --port 8007``, ``twistd qotd --port 8007`` and a YAML recipe's
``- plugin: qotd`` entry all end here, so they can never disagree about a
plugin's options, the name a second service of the same plugin gets
(``qotd-2``) or the recipe kept on the service for a later YAML save.

A *recipe* is plain data: ``{"plugin": NAME, "options": {LONG: VALUE}, "args": [...]}``.
It is kept on each top-level service as ``tapsterRecipe`` (so it survives
pickle, XML and source files too) and is what the YAML format writes.

Public through :mod:`tapster.core.plugin` (``make_service``,
``build_application``, ``attach``, ``recipe_for``); this module has no
command line of its own: ``prog`` only names the command in a plugin's
``--help``, and progress goes to whatever :class:`Reporter` the caller passes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tapster.core.service import Application, IService

__all__ = [
    "RECIPE_ATTRIBUTE",
    "Reporter",
    "recipe_for",
    "options_argv",
    "build_service",
    "unique_name",
    "attach",
    "make_service",
    "build_application",
]

#: The attribute on a top-level service holding the recipe that built it.
RECIPE_ATTRIBUTE = "tapsterRecipe"


class Reporter(Protocol):
    """What building reports to: mktap's progress display implements it; the default is quiet."""

    def step(self, text: str) -> contextlib.AbstractContextManager[None]: ...

    def note(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...


class _Quiet:
    """The default reporter: warnings go to stderr under the command's name, nothing else is said."""

    def __init__(self, prog: str) -> None:
        self.prog = prog

    def step(self, text: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        print(f"{self.prog}: warning: {text}", file=sys.stderr)


# -- recipes ---------------------------------------------------------------------


def recipe_for(plugin: str, config: Any, argv: Sequence[str]) -> dict[str, Any]:
    """The recipe of a service built by ``plugin`` from ``argv``, already parsed into ``config``.

    Only the options given on the command line are recorded (so a later change
    of a plugin's default applies), by long name, as typed: the text before
    the plugin's coerce function, which may not round-trip. A parameter keeps
    its last value; an ``opt_`` method given several times keeps every value,
    in order, as it is called once per occurrence.
    """
    found, rest = config.scanArguments(list(argv))  # the scan parseOptions itself made
    options: dict[str, Any] = {}
    repeated: dict[str, list[Any]] = {}
    for spec, value, _spelled in found:
        name = spec.name
        if spec.kind == "flag":
            options[name] = True
        elif spec.kind == "param":
            options[name] = value
        else:
            repeated.setdefault(name, []).append(value if spec.takesArg else True)
            options[name] = None  # placeholder: keeps the order options were given in
    for name, values in repeated.items():
        if values[0] is True:  # a flag method: given once, or counted
            options[name] = True if len(values) == 1 else len(values)
        else:
            options[name] = values[0] if len(values) == 1 else values
    recipe: dict[str, Any] = {"plugin": plugin, "options": options}
    if rest:
        recipe["args"] = list(rest)
    return recipe


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def options_argv(config: Any, options: dict[str, Any], args: Sequence[Any] = ()) -> list[str]:
    """The command line that gives ``config`` these recipe ``options`` (then ``args``).

    Raises :class:`tapster.core.usage.UsageError` naming the option when a name is
    unknown or a value has the wrong shape for it.
    """
    from tapster.core._persist.limits import brief
    from tapster.core.usage import UsageError

    argv: list[str] = []
    for name, value in options.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"option names must be text, not {brief(name)}")
        spec = config.findOption(name) or config.lookupOption(name)  # unknown: "did you mean --port?"
        spelled = f"--{spec.long}" if spec.long else f"-{spec.short}"
        if value is None:
            continue  # written as "port:" with no value: keep the default
        if spec.takesArg:
            values = value if isinstance(value, list) else [value]
            if isinstance(value, list) and spec.kind == "param":
                raise UsageError(f"option {spelled} takes one value, not a list")
            for item in values:
                if isinstance(item, bool):
                    raise UsageError(
                        f"option {spelled} takes a value, not {str(item).lower()} "
                        "(quote it if you mean the word: 'yes')"
                    )
                if item is None or isinstance(item, (dict, list)):
                    raise UsageError(f"option {spelled}: {brief(item)} is not a value (write text or a number)")
                argv.extend([f"{spelled}={_text(item)}"] if spec.long else [spelled, _text(item)])
        else:
            if value is False:
                continue
            if value is True:
                count = 1
            elif isinstance(value, int) and value >= 0:
                count = value
            else:
                raise UsageError(f"option {spelled} is a flag: write true or false, not {brief(value)}")
            argv.extend([spelled] * count)
    if args:
        argv.append("--")
        argv.extend(_text(a) for a in args)
    return argv


def build_service(recipe: dict[str, Any]) -> Any:
    """Rebuild a service from its recipe by calling its plugin; the recipe is attached to it.

    Errors (unknown plugin, unknown option, bad value, the plugin raising)
    propagate as :class:`PluginError`, :class:`tapster.core.usage.UsageError` or the
    plugin's own exception; the YAML loader adds the file and service names.
    """
    from tapster.core.plugin import load_plugin
    from tapster.core.usage import UsageError

    maker = load_plugin(recipe["plugin"])
    config = maker.options()
    argv = options_argv(config, recipe.get("options") or {}, recipe.get("args") or ())
    try:
        config.parseOptions(argv)
    except SystemExit:  # help/version asked for in a recipe
        raise UsageError("options asking for help or the version do not belong in a recipe") from None
    service = maker.makeService(config)
    _set_recipe(service, recipe)
    return service


def _set_recipe(service: Any, recipe: dict[str, Any]) -> None:
    try:
        setattr(service, RECIPE_ATTRIBUTE, recipe)
    except AttributeError:  # a service with __slots__: it cannot be saved as a recipe, which YAML will say
        pass


def unique_name(collection: Any, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever ``collection`` has no child called yet."""
    taken = getattr(collection, "namedServices", {})
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def attach(app: Any, service: Any, recipe: dict[str, Any] | None, name: str | None = None) -> Any:
    """Add ``service`` (built from ``recipe``) to ``app`` as mktap does, with a name no sibling has.

    Without ``name``, the service keeps the name its plugin gave it, else
    takes the plugin's; a second one of the same plugin becomes ``qotd-2``.
    """
    if recipe is not None:
        _set_recipe(service, recipe)
    base = name or getattr(service, "name", None) or (recipe or {}).get("plugin") or "service"
    chosen = base if name else unique_name(app, base)
    if getattr(service, "name", None) != chosen:
        service.setName(chosen)
    service.setServiceParent(app)
    return service


# -- building from a command line ----------------------------------------------


class _Parent:
    """Stands in as the plugin Options' ``parent`` so its usage reads ``mktap [options] qotd ...``."""

    def __init__(self, plugin: str, prog: str) -> None:
        self.subCommand = plugin
        self.prog = prog

    def getSynopsis(self) -> str:
        return f"Usage: {self.prog} [options]"

    def _commandName(self) -> str:  # the name Options.getUsage asks its parent for
        return self.prog


def make_service(plugin: str, plugin_argv: Sequence[str], prog: str = "mktap",
                 reporter: Reporter | None = None) -> tuple[IService, dict[str, Any]]:
    """Load ``plugin``, parse ``plugin_argv`` with its Options and call its makeService.

    Returns the service and its recipe (plugin name and the options given,
    by long name), which :func:`attach` keeps on the service. A plugin's own
    ``--help`` raises SystemExit, as Twisted's Options does.
    """
    from tapster.core.plugin import find_plugin

    report: Reporter = reporter if reporter is not None else _Quiet(prog)
    with report.step(f"finding plugin {plugin}"):
        entry = find_plugin(plugin)
    if entry.others:
        report.warn(
            f"plugin {plugin!r} is provided by {entry.distribution} and also by {', '.join(entry.others)}; "
            f"using {entry.distribution} (uninstall one of them to silence this)"
        )
    report.note(f"plugin {plugin}: entry point {entry.value!r} of {entry.distribution} {entry.version}".rstrip())
    with report.step(f"importing plugin {plugin}"):
        maker = entry.load()
    where = getattr(maker.module, "__file__", None) or getattr(maker.module, "__module__", "?")
    report.note(f"plugin {plugin}: imported from {where}")
    with report.step("parsing the plugin's options"):
        config = maker.options()
        config.parent = _Parent(plugin, prog)
        config.parseOptions(list(plugin_argv))
    with report.step(f"building the {plugin} service"):
        service = maker.makeService(config)
    recipe = recipe_for(plugin, config, plugin_argv)
    report.note(f"plugin {plugin}: built {type(service).__module__}.{type(service).__qualname__}; recipe {recipe}")
    return service, recipe


def build_application(plugin: str, plugin_argv: Sequence[str], appname: str | None = None,
                      uid: int | str | None = None, gid: int | str | None = None,
                      prog: str = "mktap", reporter: Reporter | None = None) -> Application:
    """A new Application named ``appname`` (default: the plugin's) holding the plugin's service."""
    from tapster.core.service import Application

    service, recipe = make_service(plugin, plugin_argv, prog, reporter)
    app = Application(appname or plugin, uid, gid)
    attach(app, service, recipe)
    return app
