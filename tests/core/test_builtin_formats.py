"""The built-in formats are described once (tapster.core._persist.formats) and their code imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

from tapster.core._persist.formats import BUILTIN_FORMATS
from tapster.core.plugin import format_specs


def test_each_row_of_the_table_names_a_module_with_the_three_functions() -> None:
    for row in BUILTIN_FORMATS:
        module = importlib.import_module(row.module)
        assert all(callable(getattr(module, f)) for f in ("dump", "load", "sniff")), row.module
        assert not hasattr(module, "SPEC"), f"{row.module} describes itself again: the table is the one place"


def test_the_specs_offered_are_the_table() -> None:
    specs = format_specs()
    for row in BUILTIN_FORMATS:
        spec = specs[row.name]
        assert (spec.extension, spec.description, spec.safe) == (row.extension, row.description, row.safe)


def test_every_built_in_format_is_offered() -> None:
    assert {"pickle", "xml", "source", "yaml"} <= set(format_specs())


def test_loading_a_pickle_imports_no_other_format(tmp_path) -> None:
    from tapster.core import persist
    from tapster.core.service import Application

    path = tmp_path / "app.tap"
    persist.save(Application("app"), str(path))
    code = (
        "import sys; from tapster.core import persist; persist.load(sys.argv[1]); "
        "print(sorted(m for m in sys.modules"
        " if m.endswith('_format') or m in ('yaml', 'tapster.core._persist.walker')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tapster.core._persist.pickle_format']"
