"""The benchmark scripts stay runnable. They are not benchmarks run by pytest: no timings here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _load(script: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{script}", BENCH_DIR / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being created.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize(
    ("script", "expected_option"),
    [("run", "--rounds"), ("help_speed", "--runs"), ("web", "--rounds")],
)
def test_bench_script_imports_and_help_works(script: str, expected_option: str) -> None:
    module = _load(script)
    assert callable(module.main)

    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert expected_option in done.stdout
