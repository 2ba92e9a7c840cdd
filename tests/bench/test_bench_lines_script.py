"""bench/lines.py stays runnable: it imports (with bench/run.py's helpers) and ``--help`` works. No timings here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def test_lines_benchmark_help_works() -> None:
    done = subprocess.run([sys.executable, str(BENCH_DIR / "lines.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--rounds" in done.stdout and "--lines-per-block" in done.stdout
