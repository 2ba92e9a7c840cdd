"""bench/plugins_help.py stays runnable: its generated plugins are found and listed. No timings here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "plugins_help.py"


def _load():
    spec = importlib.util.spec_from_file_location("_bench_plugins_help", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_plugins_are_listed_by_mktap(tmp_path: Path) -> None:
    names = _load().make_plugins(tmp_path, 3)
    assert names == ["bench00", "bench01", "bench02"]
    mktap = Path(sys.executable).parent / "mktap"
    done = subprocess.run([str(mktap), "--help"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    for index, name in enumerate(names):
        assert re.search(rf"^  {name}\s+Benchmark plugin number {index}:", done.stdout, re.M), done.stdout
    assert "BROKEN" not in done.stdout


def test_script_runs_with_a_handful_of_plugins() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "-n", "1", "-k", "2"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 more plugins cost" in done.stdout
