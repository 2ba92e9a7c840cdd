"""Twisted's own ``twisted/test/test_usage.py``, run against ``tapster.core.usage``.

tapster promises that an ``Options`` subclass written for ``twisted.python.usage``
ports by changing imports only. The strongest check is Twisted's own test file,
so this test:

1. finds (or creates, once) a throwaway virtualenv with Twisted from the package
   registry: ``$TAPSTER_TWISTED_VENV`` if set, else ``bench/.venv-twisted`` (the
   benchmarks' venv) when it holds Twisted, else ``tests/compat/.twisted-venv``
   (gitignored). Twisted is never a dependency of tapster and is never imported
   here: the venv only supplies the text of the test file;
2. reads ``twisted/test/test_usage.py`` from it, rewrites its imports
   (``twisted.python.usage`` becomes ``tapster.core.usage``; trial's ``TestCase``
   becomes a small ``unittest.TestCase`` subclass with the few trial methods the
   file calls) into a temporary directory. The file is read at test time and
   never copied into this repository;
3. runs it with :mod:`unittest` and asserts that every test passes except those
   in :data:`KNOWN_FAILURES`, each with its reason. An entry that starts passing
   fails this test too, so the list cannot go stale.

Without network access to create the venv, the test skips, saying why.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE_VENV = Path(__file__).resolve().parent / ".twisted-venv"
BENCH_VENV = ROOT / "bench" / ".venv-twisted"
TWISTED_SPEC = os.environ.get("TAPSTER_TWISTED_SPEC", "twisted")

#: Tests of Twisted's file that are expected to fail against tapster, with the reason.
#: Empty: test_usage.py pins only public behaviour and ``Completer._shellCode`` /
#: ``usage._ZSH``, which tapster provides. (Twisted's zsh completion *generator*,
#: ``twisted.python._shellcomp``, is tested in another file, ``test_shellcomp.py``,
#: which is not run here: it drives Twisted's private ``ZshBuilder`` classes.)
KNOWN_FAILURES: dict[str, str] = {}

_SHIM = '''\
"""What test_usage.py uses of twisted.trial.unittest, on top of the standard library."""
import unittest


class TestCase(unittest.TestCase):
    def assertRaises(self, exception, f=None, *args, **kwargs):
        # trial's returns the exception when given a callable; unittest's returns None.
        if f is None:
            return super().assertRaises(exception)
        with super().assertRaises(exception) as context:
            f(*args, **kwargs)
        return context.exception

    failUnlessRaises = assertRaises

    def assertIdentical(self, first, second, msg=None):
        self.assertIs(first, second, msg)

    failUnlessIdentical = assertIdentical

    def assertNotIdentical(self, first, second, msg=None):
        self.assertIsNot(first, second, msg)

    failIfIdentical = assertNotIdentical

    def assertSubstring(self, substring, astring, msg=None):
        self.assertIn(substring, astring, msg)

    def assertNotSubstring(self, substring, astring, msg=None):
        self.assertNotIn(substring, astring, msg)

    def patch(self, obj, attribute, value):
        old = getattr(obj, attribute)
        setattr(obj, attribute, value)
        self.addCleanup(setattr, obj, attribute, old)


SynchronousTestCase = TestCase
'''

_REWRITES = (
    ("from twisted.python import usage\n", "from tapster.core import usage\n"),
    ("from twisted.trial import unittest\n", "import _trial_shim as unittest\n"),
)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _find_test_file(venv: Path) -> Path | None:
    hits = glob.glob(str(venv / "lib" / "python*" / "site-packages" / "twisted" / "test" / "test_usage.py"))
    return Path(hits[0]) if hits else None


def _twisted_test_file() -> Path:
    """test_usage.py from a Twisted venv, creating the cached venv if none exists."""
    override = os.environ.get("TAPSTER_TWISTED_VENV")
    candidates = [Path(override)] if override else [BENCH_VENV, CACHE_VENV]
    for venv in candidates:
        found = _find_test_file(venv)
        if found is not None:
            return found
    venv = candidates[-1]
    try:
        if not _venv_python(venv).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        result = subprocess.run(
            [str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TWISTED_SPEC],
            capture_output=True, text=True, timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot create a Twisted venv in {venv}: {exc}")
    found = _find_test_file(venv)
    if result.returncode != 0 or found is None:
        pytest.skip(f"cannot install {TWISTED_SPEC!r} from the package registry (offline?): "
                    f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return found


def _rewritten(source: str) -> str:
    for old, new in _REWRITES:
        assert old in source, f"Twisted's test_usage.py no longer contains {old!r}: update the rewrite rules"
        source = source.replace(old, new)
    left = [line for line in source.splitlines() if line.lstrip().startswith(("import twisted", "from twisted"))]
    assert not left, f"imports of Twisted left after the rewrite: {left}"
    return source


def _test_ids(suite: unittest.TestSuite) -> list[str]:
    out: list[str] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            out.extend(_test_ids(item))
        else:
            out.append(item.id().split(".", 1)[1])
    return out


def run_rewritten(tmp_path: Path, name: str, text: str) -> tuple[list[str], unittest.TestResult]:
    """Write ``text`` (a rewritten Twisted test module) as ``name`` beside the trial shim and run it."""
    (tmp_path / "_trial_shim.py").write_text(_SHIM, encoding="utf-8")
    target = tmp_path / f"{name}.py"
    target.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.util.spec_from_file_location(name, target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        ran = _test_ids(suite)
        result = unittest.TestResult()
        suite.run(result)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("_trial_shim", None)
    return ran, result


def test_twisted_test_usage_passes_against_tapster(tmp_path: Path) -> None:
    source = _twisted_test_file().read_text(encoding="utf-8")
    ran, result = run_rewritten(tmp_path, "twisted_test_usage", _rewritten(source))

    assert len(ran) >= 35, f"only {len(ran)} tests found in Twisted's test_usage.py"
    broken = {case.id().split(".", 1)[1]: trace for case, trace in result.failures + result.errors}
    unexpected = {name: trace for name, trace in broken.items() if name not in KNOWN_FAILURES}
    fixed = sorted(name for name in KNOWN_FAILURES if name in ran and name not in broken)
    report = "\n\n".join(f"{name}:\n{textwrap.indent(trace, '    ')}" for name, trace in sorted(unexpected.items()))
    assert not unexpected, f"{len(unexpected)} of {len(ran)} Twisted tests fail against tapster:\n\n{report}"
    assert not fixed, f"these now pass: remove them from KNOWN_FAILURES: {fixed}"
