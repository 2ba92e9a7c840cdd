"""The built-in application formats, described once.

One row per format: its name (``mktap --type``), its file extension, the
module that implements ``dump(app) -> bytes``, ``load(data, filename) -> app``
and ``sniff(head) -> bool``, a description for ``--help``, and whether loading
is safe for a file from a stranger. :mod:`tapster.core._builtin_hooks` turns
the rows into :class:`tapster.core.hookspecs.FormatSpec` objects whose
functions import their module on first use, so ``twistd -f app.tap`` imports
the pickle format alone (the XML and YAML modules, and PyYAML, cost tens of
milliseconds at start-up).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BuiltinFormat", "BUILTIN_FORMATS"]


class BuiltinFormat(NamedTuple):
    name: str
    extension: str
    module: str
    description: str
    safe: bool


BUILTIN_FORMATS: tuple[BuiltinFormat, ...] = (
    BuiltinFormat("pickle", "tap", "tapster.core._persist.pickle_format",
                  "Python pickle: fastest; loading runs code, so load trusted files only", False),
    BuiltinFormat("yaml", "yaml", "tapster.core._persist.yaml_format",
                  "YAML recipe: plugin names and options, rebuilt by calling each plugin; "
                  "hand-editable, safe to load", True),
    BuiltinFormat("xml", "tax", "tapster.core._persist.xml_format",
                  "XML: readable; loading runs no code (only classes that tapster and the installed "
                  "plugins declare safe)", True),
    BuiltinFormat("source", "tas", "tapster.core._persist.source_format",
                  "Python source: readable and diffable, rebuilds the application when run; "
                  "runs code (trusted files only)", False),
)
