#!/usr/bin/env python3
"""tapster's twistd with ``--workers 1`` and ``--workers 2`` side by side: echo and QOTD.

Usage, from the repository root, with the python whose bin/ has tapster's twistd::

    python bench/workers.py                      # 3 rounds x 3 s per test
    python bench/workers.py --rounds 5 --duration 5
    python bench/workers.py --tools /work/shared/tools --tapster-bin /tmp/v1/bin

For each round and each worker count, in turn: ``loadgen echo -c 50`` (round
trips/s) against ``twistd -n -o --workers N echo``, and ``loadgen connect -c 50``
(connections/s) against ``twistd -n -o --workers N qotd``, while the CPU time
(utime + stime from /proc) of the supervisor and all its workers is read before
and after: server CPU µs per operation. Medians over the rounds are printed.

What limits the figures on a 2-core machine: the servers are not pinned (two
workers need both cores) and loadgen runs on the same two cores, so with two
workers the load generator competes with the servers for CPU; the rate gained
is what is left after loadgen's share, and CPU per operation is the steady
figure (it shows the cost of one more process: none per operation).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import run as _run  # noqa: E402  (the shared bench helpers: ports, the C tools)


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {deadline}s")


def tree(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of ``pid`` and of every descendant, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    found: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in cpu:
            found[p] = cpu[p]
        todo.extend(children.get(p, []))
    return found


def tree_cpu(pid: int) -> float:
    return sum(tree(pid).values())


def loadgen(binary: Path, mode: str, port: int, duration: float) -> float:
    out = subprocess.run([str(binary), mode, "-p", str(port), "-c", "50", "-d", str(duration)],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    match = re.search(r"RESULT .*rate=([0-9.]+)", out)
    if match is None:
        raise SystemExit(f"loadgen printed no RESULT:\n{out}")
    return float(match.group(1))


def measure(bin_dir: Path, loadgen_bin: Path, workers: int, plugin: str, mode: str,
            duration: float) -> tuple[float, float]:
    port = _run.free_ports(1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([str(bin_dir / "twistd"), "-n", "-o", "--workers", str(workers), plugin, "-p",
                                 f"tcp:{port}:interface=127.0.0.1"], cwd=tmp, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(port, proc)
            expected = 1 + (workers if workers > 1 else 0)  # the supervisor and its workers
            end = time.monotonic() + 30
            while len(tree(proc.pid)) < expected and time.monotonic() < end:  # the port answers with the first
                time.sleep(0.02)
            before = tree_cpu(proc.pid)
            started = time.monotonic()
            rate = loadgen(loadgen_bin, mode, port, duration)
            elapsed = time.monotonic() - started
            used = tree_cpu(proc.pid) - before
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    operations = rate * elapsed
    return rate, (used / operations * 1e6) if operations else float("nan")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--tools", type=Path, default=REPO.parent / "shared" / "tools")
    parser.add_argument("--tapster-bin", type=Path, default=Path(sys.executable).parent)
    args = parser.parse_args(argv)
    loadgen_bin, _ = _run.build_tools(args.tools)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    tests = [("echo", "echo", "echo round trips/s"), ("qotd", "connect", "qotd connections/s")]
    for _ in range(args.rounds):
        for plugin, mode, _label in tests:
            for workers in (1, 2):
                results.setdefault((plugin, workers), []).append(
                    measure(args.tapster_bin, loadgen_bin, workers, plugin, mode, args.duration))
    print(f"| test | --workers 1 | --workers 2 | ratio | CPU µs/op w1 | CPU µs/op w2 |  ({args.rounds} rounds, "
          f"medians)")
    print("|---|---|---|---|---|---|")
    for plugin, _mode, label in tests:
        one, two = results[(plugin, 1)], results[(plugin, 2)]
        r1, r2 = statistics.median(r for r, _ in one), statistics.median(r for r, _ in two)
        c1, c2 = statistics.median(c for _, c in one), statistics.median(c for _, c in two)
        print(f"| {label} | {r1:,.0f} | {r2:,.0f} | {r2 / r1:.2f}x | {c1:.1f} | {c2:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
