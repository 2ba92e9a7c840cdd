"""Twisted's own test_application.py service, process, interface and application tests, against tapster.

Like :mod:`tests.compat.test_twisted_usage`: the file is read at test time from
a throwaway venv with Twisted from the registry (nothing of Twisted is kept in
this repository), the part that tests ``twisted.application.service`` and
``sob.IPersistable`` (from ``class Dummy`` to ``class LoadingTests``) is given
tapster's modules in place of Twisted's, and run with unittest. The rest of
that file tests Twisted's own loaders, reactors and internet services, which
tapster provides differently.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.compat.test_twisted_usage import _twisted_test_file, run_rewritten

HEADER = (
    "import copy, os, pickle\n"
    "from tapster.core import service, persist as sob\n"
    "import _trial_shim as _u\n"
    "TestCase = _u.TestCase\n"
)


def _part(source: str) -> str:
    lines = source.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("class Dummy"))
    end = next(i for i, line in enumerate(lines) if line.startswith("class LoadingTests"))
    body = "".join(lines[start:end])
    left = [line for line in body.splitlines() if line.lstrip().startswith(("import twisted", "from twisted"))]
    assert not left, f"imports of Twisted inside the part that is run: {left}"
    return HEADER + body


def test_twisted_test_application_service_tests_pass_against_tapster(tmp_path: Path) -> None:
    source = (_twisted_test_file().parent / "test_application.py").read_text(encoding="utf-8")
    ran, result = run_rewritten(tmp_path, "twisted_test_application", _part(source))
    assert len(ran) >= 20, f"only {len(ran)} tests found in that part of Twisted's test_application.py"
    broken = result.failures + result.errors
    report = "\n\n".join(f"{case.id()}:\n{textwrap.indent(trace, '    ')}" for case, trace in broken)
    assert not broken, f"{len(broken)} of {len(ran)} Twisted tests fail against tapster:\n\n{report}"
