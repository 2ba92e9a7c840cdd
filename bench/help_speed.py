#!/usr/bin/env python3
"""How long ``mktap --help`` takes, next to the bare interpreter's start-up.

Run it with the project's virtualenv python (stdlib only)::

    /work/venv/bin/python bench/help_speed.py          # median of 20 runs each
    /work/venv/bin/python bench/help_speed.py -n 50

Each command is run once untimed (so the files it reads are in the page cache), then
N times, and the median wall time of the whole subprocess is reported: that is what a
user waits for after pressing Enter. ``python -c pass`` is the floor no Python command
can go below; the difference is what tapster itself costs before printing help
(its imports, finding the plugins through entry points, building the option table).

The cases live in :func:`cases` so that more can be added later, such as
``mktap --help`` with 30 plugins installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main"]


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]


@dataclass(frozen=True)
class Timing:
    case: Case
    median_ms: float
    min_ms: float
    runs: int


def cases(bin_dir: Path) -> list[Case]:
    """What to time. ``bin_dir`` holds tapster's console scripts and the interpreter."""
    return [
        Case("mktap --help", [str(bin_dir / "mktap"), "--help"]),
        Case("python -c pass", [sys.executable, "-c", "pass"]),
    ]


def run_once(argv: Sequence[str]) -> float:
    """Wall time of one run in seconds; a failing command is an error, not a fast result."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with status {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-500:]}"
        )
    return elapsed


def time_case(case: Case, runs: int) -> Timing:
    run_once(case.argv)  # warm the page cache: we measure start-up, not the disk
    samples = [run_once(case.argv) * 1000 for _ in range(runs)]
    return Timing(case, statistics.median(samples), min(samples), runs)


def report(timings: list[Timing]) -> str:
    width = max(len(t.case.label) for t in timings)
    lines = [
        f"{t.case.label:<{width}}  median {t.median_ms:6.1f} ms  (min {t.min_ms:.1f} ms, n={t.runs})"
        for t in timings
    ]
    by_label = {t.case.label: t for t in timings}
    mktap, bare = by_label.get("mktap --help"), by_label.get("python -c pass")
    if mktap and bare:
        lines += [
            "",
            f"mktap --help costs {mktap.median_ms - bare.median_ms:.1f} ms on top of starting the "
            f"interpreter ({mktap.median_ms / bare.median_ms:.1f}× `python -c pass`).",
            "That extra is tapster's own work before help is printed: its imports, reading the",
            "mktap.plugins entry points and building the option table. `python -c pass` is the",
            "floor. A help path that imported asyncio would pay several tens of ms more for that",
            "import alone, which is why the help path keeps asyncio, uvloop and plugins unimported.",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/help_speed.py",
        description="Time `mktap --help` (median wall time of N runs) next to `python -c pass`.",
    )
    parser.add_argument("-n", "--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument(
        "--tapster-bin",
        type=Path,
        default=Path(sys.executable).parent,
        help="directory holding tapster's mktap (default: this python's bin/)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be ≥ 1")
    try:
        timings = [time_case(case, args.runs) for case in cases(args.tapster_bin)]
    except FileNotFoundError as exc:
        print(
            f"help_speed: error: {exc.filename} not found (install tapster into this venv, "
            "or pass --tapster-bin DIR)",
            file=sys.stderr,
        )
        return 1
    except (RuntimeError, OSError) as exc:
        print(f"help_speed: error: {exc}", file=sys.stderr)
        return 1
    print(report(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
