#!/usr/bin/env python3
"""How ``mktap --help`` scales with the number of installed plugins: 2 (the built-ins) vs 32.

Run it with the project's virtualenv python (stdlib only)::

    /work/venv/bin/python bench/plugins_help.py              # 30 extra plugins, median of 20 runs
    /work/venv/bin/python bench/plugins_help.py -n 50 -k 100

The extra plugins are a generated throwaway distribution, ``bench-plugins``,
in a temporary directory put on ``PYTHONPATH``: a ``.dist-info`` with 30
entry points in the ``mktap.plugins`` group and one small module per plugin,
shaped like a real one (``description``, an ``Options`` class, a
``makeService`` that imports its heavy parts lazily). importlib-metadata finds
a dist-info on ``sys.path`` exactly as it finds an installed package, so this
is what ``pip install`` of 30 plugins looks like to mktap, without a venv.

Each case is run once untimed (page cache), then N times; the median wall
time of the whole subprocess is reported, as in ``bench/help_speed.py``. The
listing imports each plugin module (to show its description) but none of
their heavy dependencies: the difference between the two cases is the cost
of reading 30 entry points and importing 30 small modules.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "make_plugins"]

PACKAGE = "bench_plugins"

PLUGIN_SOURCE = '''\
"""Generated benchmark plugin {index}."""

from tapster.core import usage
from tapster.core.protocol import Factory, Protocol

description = "Benchmark plugin number {index}: answers and hangs up."


class Answer(Protocol):
    def connectionMade(self):
        self.transport.write(b"{index}\\r\\n")
        self.transport.loseConnection()


class Options(usage.Options):
    optParameters = [["port", "p", "{port}", "Port or endpoint to listen on."]]
    optFlags = [["verbose", "v", "Log every connection."]]


def makeService(config):
    from tapster.core import endpoints

    return endpoints.service(config["port"], Factory.forProtocol(Answer))
'''


def make_plugins(directory: Path, count: int) -> list[str]:
    """Write ``count`` plugins and their dist-info into ``directory``; returns the plugin names."""
    package = directory / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Generated plugins for bench/plugins_help.py."""\n')
    names = []
    for index in range(count):
        name = f"bench{index:02d}"
        (package / f"{name}.py").write_text(PLUGIN_SOURCE.format(index=index, port=9000 + index))
        names.append(name)
    info = directory / "bench_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[mktap.plugins]\n" + "".join(f"{name} = {PACKAGE}.{name}\n" for name in names)
    )
    (info / "top_level.txt").write_text(PACKAGE + "\n")
    return names


def run_once(argv: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout


def listed(output: str) -> int:
    """How many plugin rows ``mktap --help`` printed (plain table: two-space indent under "Plugins:")."""
    rows = output.split("Plugins:", 1)[-1].splitlines()
    return sum(1 for row in rows if row.startswith("  ") and row.strip())


def time_case(argv: Sequence[str], env: dict[str, str], runs: int) -> tuple[float, float, int]:
    _, output = run_once(argv, env)  # warm the page cache and the bytecode caches
    samples = [run_once(argv, env)[0] * 1000 for _ in range(runs)]
    return statistics.median(samples), min(samples), listed(output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("-k", "--plugins", type=int, default=30, help="extra plugins to install (default 30)")
    args = parser.parse_args(argv)

    mktap = Path(sys.executable).parent / "mktap"
    if not mktap.exists():
        print(f"{mktap} not found: pip install -e . into this interpreter's environment first", file=sys.stderr)
        return 1
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FORCE_COLOR")}
    base_env["COLUMNS"] = "100"
    work = Path(tempfile.mkdtemp(prefix="tapster-bench-plugins-"))
    try:
        make_plugins(work, args.plugins)
        many_env = dict(base_env, PYTHONPATH=str(work))
        cmd = [str(mktap), "--help"]
        few = time_case(cmd, base_env, args.runs)
        many = time_case(cmd, many_env, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    label_few, label_many = f"{few[2]} plugins", f"{many[2]} plugins"
    width = max(len(label_few), len(label_many))
    print(f"mktap --help, median of {args.runs} runs (wall time of the whole command):")
    print(f"  {label_few:<{width}}  median {few[0]:6.1f} ms  (min {few[1]:.1f} ms)")
    print(f"  {label_many:<{width}}  median {many[0]:6.1f} ms  (min {many[1]:.1f} ms)")
    extra = many[2] - few[2]
    if extra > 0:
        per = (many[0] - few[0]) / extra
        print(
            f"  {extra} more plugins cost {many[0] - few[0]:+.1f} ms ({per:.2f} ms each), ratio {many[0] / few[0]:.2f}x"
        )
    if many[2] != few[2] + args.plugins:
        print(f"warning: expected {few[2] + args.plugins} plugins in the listing, saw {many[2]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
