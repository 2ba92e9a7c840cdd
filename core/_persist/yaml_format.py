"""The ``yaml`` application format (``.yaml``): a recipe, not a memory dump.

A YAML application names, per service, the plugin that builds it and that
plugin's options by long name; loading calls the plugin again
(``Options().parseOptions(...)`` then ``makeService(config)``) and attaches
the services the way mktap does. The file is meant to be written and edited
by hand::

    tapster: 1                 # recipe format version (optional)
    name: demo                 # application name: names the shutdown file
    uid: nobody                # optional: user to run as after binding (name or number)
    gid: nogroup               # optional
    services:
      - plugin: qotd           # an installed mktap plugin
        name: qotd             # optional: default the plugin name (qotd-2 for a second one)
        options:               # long option names, as on mktap's command line
          port: tcp:8007:interface=127.0.0.1
          static: Hello from tapster.
      - plugin: echo
        options: {port: "tcp:8008:interface=127.0.0.1"}

Option values are text (numbers are turned into text), ``true``/``false``
for flags (an integer repeats a counting flag), or a list for an option given
several times (``fortune: [a.txt, b.txt]``); an option left out keeps the
plugin's default, ``args`` lists positional arguments.

Why a recipe: state saved by a memory dump ties the file to the classes of
the version that wrote it; a recipe survives plugin upgrades and can be read
and changed by a person. It is loaded with ``yaml.safe_load`` only: a
``!!python/...`` tag is refused, never constructed.

The recipe of every service mktap adds is kept on the service itself as
``tapsterRecipe`` (``{"plugin": ..., "options": {...}, "args": [...]}``,
plain data, so it survives pickle, XML and source files too); a service
without one (added by hand) cannot be saved as YAML, and saying so names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tapster.core._assembly import RECIPE_ATTRIBUTE, attach, build_service
from tapster.core._persist.limits import TooHeavy, Weigher, brief, cap
from tapster.core.errors import PersistError, PluginError

__all__ = ["dump", "load", "sniff", "RECIPE_VERSION"]

RECIPE_VERSION = 1

_TOP_KEYS = ("tapster", "name", "uid", "gid", "services")
_SERVICE_KEYS = ("plugin", "name", "options", "args")

_HEADER = (
    f"tapster: {RECIPE_VERSION}\n"
    "# A tapster application recipe. twistd -f rebuilds each service by calling its\n"
    "# plugin's makeService with these options (long names, as on the mktap command\n"
    "# line); an option left out takes the plugin's default. Edit freely.\n"
)


# -- the format ------------------------------------------------------------------


def _label(service: Any) -> str:
    return f"{service.name!r} ({type(service).__name__})" if getattr(service, "name", None) else repr(service)


def dump(app: Any) -> bytes:
    import yaml

    services = []
    for service in app:
        recipe = getattr(service, RECIPE_ATTRIBUTE, None)
        if not isinstance(recipe, dict) or not isinstance(recipe.get("plugin"), str):
            raise PersistError(
                f"cannot save as yaml: service {_label(service)} was not built by a plugin, so there is "
                "no recipe to write (save as pickle, xml or source instead)"
            )
        entry: dict[str, Any] = {"name": service.name, "plugin": recipe["plugin"]}
        if recipe.get("options"):
            entry["options"] = dict(recipe["options"])
        if recipe.get("args"):
            entry["args"] = list(recipe["args"])
        services.append(entry)
    doc: dict[str, Any] = {"name": app.name}
    for key in ("uid", "gid"):
        if getattr(app, key, None) is not None:
            doc[key] = getattr(app, key)
    doc["services"] = services
    try:
        body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    except yaml.YAMLError as e:
        raise PersistError(f"cannot save as yaml: {e}") from e
    return (_HEADER + body).encode("utf-8")


def _refuse(filename: str, error: Exception) -> PersistError:
    """One line for a YAML file safe_load will not read: a Python tag, or broken syntax."""
    import yaml

    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    problem = (getattr(error, "problem", None) or str(error) or type(error).__name__).strip()
    problem = problem.splitlines()[0] if problem else type(error).__name__  # PyYAML adds "in <byte string>" lines
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        tag = problem.split("tag", 1)[1].strip(" '")
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        return PersistError(
            f"{filename}: refused the YAML tag {cap(tag, 80)}{where}: a recipe holds plain data only "
            "(it is read with yaml.safe_load); nothing in it was run"
        )
    return PersistError(f"{filename} is not valid YAML: {cap(problem, 200)}{where}")


def _suggest(key: Any, allowed: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    return f" (did you mean {brief(close[0])}?)" if close else f" (allowed: {', '.join(allowed)})"


def load(data: bytes, filename: str) -> Any:
    import os

    import yaml

    from tapster.core.service import Application
    from tapster.core.usage import UsageError

    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise _refuse(filename, e) from None
    except RecursionError:
        raise PersistError(f"{filename}: the YAML is nested too deeply to be a recipe") from None
    except Exception as e:  # noqa: BLE001 - PyYAML's resolvers raise plain errors for values such as 2001-13-45
        raise PersistError(f"{filename} is not a valid recipe: a value cannot be read "
                           f"({type(e).__name__}: {cap(str(e), 120)})") from None
    try:
        Weigher().weigh(doc)  # aliases share nodes: everything after this may walk the tree
    except TooHeavy as e:
        raise PersistError(f"{filename}: {e}") from None
    if not isinstance(doc, dict):
        raise PersistError(f"{filename}: a recipe is a mapping with name and services, not {type(doc).__name__}")
    for key in doc:
        if key not in _TOP_KEYS:
            raise PersistError(f"{filename}: unknown key {brief(key)}{_suggest(key, _TOP_KEYS)}")
    version = doc.get("tapster", RECIPE_VERSION)
    if version != RECIPE_VERSION:
        raise PersistError(
            f"{filename}: recipe version {brief(version)} is not one this tapster reads ({RECIPE_VERSION})"
        )
    name = doc.get("name")
    if name is None:
        name = os.path.splitext(os.path.basename(filename))[0]
    if not isinstance(name, str) or not name:
        raise PersistError(f"{filename}: name must be text, not {brief(name)}")
    ids = {}
    for key in ("uid", "gid"):
        value = doc.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
            raise PersistError(f"{filename}: {key} must be a user/group name or a number, not {brief(value)}")
        ids[key] = value
    services = doc.get("services")
    if services is None:
        services = []
    if not isinstance(services, list):
        raise PersistError(f"{filename}: services must be a list (one '- plugin: NAME' item per service)")

    app = Application(name, ids["uid"], ids["gid"])
    for number, entry in enumerate(services, start=1):
        where = f"{filename}: service #{number}"
        if not isinstance(entry, dict):
            raise PersistError(f"{where}: each service is a mapping with at least 'plugin: NAME', not {brief(entry)}")
        for key in entry:
            if key not in _SERVICE_KEYS:
                raise PersistError(f"{where}: unknown key {brief(key)}{_suggest(key, _SERVICE_KEYS)}")
        plugin = entry.get("plugin")
        if not isinstance(plugin, str) or not plugin:
            raise PersistError(f"{where}: 'plugin: NAME' is missing (mktap --help lists the plugins)")
        wanted = entry.get("name")
        if wanted is not None and (not isinstance(wanted, str) or not wanted):
            raise PersistError(f"{where}: name must be text, not {brief(wanted)}")
        where = f"{filename}: service {brief(wanted or plugin)} (plugin {plugin})"
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise PersistError(f"{where}: options must be a mapping of long option names to values")
        args = entry.get("args") or []
        if not isinstance(args, list):
            raise PersistError(f"{where}: args must be a list")
        if wanted is not None and wanted in app.namedServices:
            raise PersistError(f"{where}: two services are named {brief(wanted)}; names must be unique")
        recipe: dict[str, Any] = {"plugin": plugin, "options": dict(options)}
        if args:
            recipe["args"] = list(args)
        try:
            service = build_service(recipe)
        except PluginError as e:
            raise PersistError(f"{where}: {cap(str(e))}") from e
        except UsageError as e:
            raise PersistError(f"{where}: {cap(str(e))}") from e
        except Exception as e:  # the plugin's makeService failed
            raise PersistError(f"{where}: the plugin could not build it: {type(e).__name__}: {cap(str(e))}") from e
        attach(app, service, recipe, wanted)
    return app


def sniff(head: bytes) -> bool:
    """A recipe's first meaningful line (after comments, ``---`` and directives) is one of its keys."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("utf-8", "ignore")  # cut in the middle of a character at the sniff limit
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("%") or stripped == "---":
            continue
        key = line.split(":", 1)[0]
        return ":" in line and key in _TOP_KEYS
    return False
