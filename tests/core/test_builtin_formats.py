"""The built-in formats are listed lazily: metadata in core._builtin_hooks, code in one module each."""

from __future__ import annotations

import importlib
import subprocess
import sys

from core import _builtin_hooks
from core.plugin import format_specs


def test_lazy_table_agrees_with_each_modules_spec() -> None:
    for name, extension, module, description, safe in _builtin_hooks._FORMATS:
        spec = importlib.import_module(module).SPEC
        assert (spec.name, spec.extension, spec.description, spec.safe) == (name, extension, description, safe)


def test_every_built_in_format_is_offered() -> None:
    assert {"pickle", "xml", "source", "yaml"} <= set(format_specs())


def test_loading_a_pickle_imports_no_other_format(tmp_path) -> None:
    from core import persist
    from core.service import Application

    path = tmp_path / "app.tap"
    persist.save(Application("app"), str(path))
    code = (
        "import sys; from core import persist; persist.load(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.endswith('_format') or m in ('yaml', 'core._graph')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['core._pickle_format']"
