#!/usr/bin/env python3
"""Start-up time: from typing ``twistd -f qotd.tap`` to the port accepting connections.

Run it with the project's virtualenv python (stdlib only), from the repo root::

    /work/venv/bin/python bench/startup.py            # 15 runs of each case
    /work/venv/bin/python bench/startup.py -n 30

What it compares, on the same machine, with the same application (a QOTD server on
127.0.0.1 saved as a pickle ``.tap``, loaded with ``-f`` and run without a shutdown save):

- tapster's ``twistd -o -f qotd.tap`` (built with ``mktap qotd``), as a daemon and in the
  foreground (``-n``), on uvloop (the default) and on plain asyncio (``-r asyncio``);
- Twisted's ``twistd -o -f qotd.tap`` from ``bench/.venv-twisted`` (created by
  ``bench/run.py``, or here, once), the ``.tap`` pickled by Twisted itself
  (``sob.IPersistable(application).save()``, what Twisted's mktap did), on its default
  reactor (epoll), as a daemon and in the foreground;
- ``python -c pass`` with the project's interpreter: the floor no Python command goes below.

One run: start the command, then connect to the port in a tight loop (1 ms between
refused attempts) and stop the clock at the first accepted connection; a daemon's
launcher may return before or after that, its own exit time is reported too. Then the
server is stopped with SIGTERM and the next run starts once it is gone. Cases are
interleaved run by run (so drift in the machine's load touches all of them alike) after
one untimed warm-up run each (page cache, and bytecode caches: PYTHONDONTWRITEBYTECODE is
removed from the commands' environment). Medians are reported, with min and max.

Not part of the pytest suite: timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["main"]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TWISTED_VENV = BENCH_DIR / ".venv-twisted"
DEADLINE = 30.0

#: The commands run with bytecode caching on, as after a normal install: PYTHONDONTWRITEBYTECODE
#: (set in some CI and container images) would make every run of an editable install compile
#: tapster's sources again, which measures the compiler rather than the start-up.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

TWISTED_TAP = """\
import sys
from twisted.application import internet, service
from twisted.internet import protocol
from twisted.persisted import sob
from twisted.protocols.wire import QOTD

application = service.Application("qotd")
internet.TCPServer(int(sys.argv[1]), protocol.Factory.forProtocol(QOTD),
                   interface="127.0.0.1").setServiceParent(application)
sob.IPersistable(application).save(filename=sys.argv[2])
"""


@dataclass
class Case:
    """One way of starting the server; ``argv`` gets the run's pidfile/log names appended."""

    label: str
    argv: list[str]
    cwd: Path
    port: int
    daemon: bool
    samples: list[float] = field(default_factory=list)  # seconds to the first accepted connection
    launcher: list[float] = field(default_factory=list)  # daemon: seconds until the launcher exited


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_until(predicate: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {deadline:.0f} s waiting for {what}")
        time.sleep(0.005)


def ensure_twisted_venv(venv: Path = TWISTED_VENV) -> Path:
    """The virtualenv with Twisted that bench/run.py uses, created here if missing."""
    twistd = venv / "bin" / "twistd"
    if not twistd.exists():
        log(f"twisted: creating {venv} (once) and installing Twisted from PyPI")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "twisted"],
                       check=True, stdout=sys.stderr)
    return twistd


def run_once(case: Case, index: int) -> None:
    """Start ``case``, time it to the first accepted connection, stop it and wait until it is gone.

    A server that does not start or stop as it should is killed before the error goes up.
    """
    argv = list(case.argv)
    pidfile = case.cwd / f"run{index}.pid"
    if case.daemon:
        argv += ["--pidfile", pidfile.name, "--logfile", f"run{index}.log"]
    if accepts(case.port):
        raise RuntimeError(f"port {case.port} is already in use before starting {case.label}")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=case.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        _time_and_stop(case, proc, start, pidfile)
    except BaseException:
        _kill(proc, pidfile if case.daemon else None)
        raise
    finally:
        if proc.stderr is not None:
            proc.stderr.close()
    wait_until(lambda: not accepts(case.port), f"port {case.port} to close")


def _kill(proc: subprocess.Popen, pidfile: Path | None) -> None:
    """SIGKILL the launcher and, for a daemon, the pid in its pidfile (never anything else)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if pidfile is not None and pidfile.exists() and pidfile.read_text().strip().isdigit():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _time_and_stop(case: Case, proc: subprocess.Popen, start: float, pidfile: Path) -> None:
    launcher_done: float | None = None
    end = time.monotonic() + DEADLINE
    while True:
        if launcher_done is None and proc.poll() is not None:
            launcher_done = time.perf_counter() - start
            if proc.returncode != 0 or not case.daemon:
                raise RuntimeError(f"{case.label} exited with {proc.returncode}: "
                                   f"{proc.stderr.read().decode(errors='replace')[-500:]}")  # type: ignore[union-attr]
        if accepts(case.port):
            case.samples.append(time.perf_counter() - start)
            break
        if time.monotonic() > end:
            proc.kill()
            raise RuntimeError(f"{case.label} did not accept on port {case.port} within {DEADLINE:.0f} s")
        time.sleep(0.001)
    if case.daemon:
        if launcher_done is None:
            proc.wait(timeout=DEADLINE)
            launcher_done = time.perf_counter() - start
        case.launcher.append(launcher_done)
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), f"{pidfile}")
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: gone(pid), f"{case.label} (pid {pid}) to exit")
    else:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=DEADLINE)


def floor_case(python: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True, env=ENV)
        samples.append(time.perf_counter() - start)
    return samples[1:]


def build_cases(workdir: Path, bin_dir: Path, twisted: Path | None, asyncio_too: bool) -> list[Case]:
    """Build the .tap files and describe every case."""
    cases: list[Case] = []
    tapster_dir = workdir / "tapster"
    tapster_dir.mkdir()
    port = free_port()
    subprocess.run([str(bin_dir / "mktap"), "qotd", "--port", f"tcp:{port}:interface=127.0.0.1"],
                   cwd=tapster_dir, check=True, stderr=subprocess.DEVNULL)
    twistd = str(bin_dir / "twistd")
    reactors = [("uvloop", [])] + ([("asyncio", ["-r", "asyncio"])] if asyncio_too else [])
    for name, extra in reactors:
        cases.append(Case(f"tapster daemon ({name})", [twistd, "-o", *extra, "-f", "qotd.tap"],
                          tapster_dir, port, daemon=True))
        cases.append(Case(f"tapster foreground ({name})", [twistd, "-n", "-o", *extra, "-f", "qotd.tap"],
                          tapster_dir, port, daemon=False))
    if twisted is not None:
        twisted_dir = workdir / "twisted"
        twisted_dir.mkdir()
        tport = free_port()
        python = twisted.parent / "python"
        subprocess.run([str(python), "-c", TWISTED_TAP, str(tport), "qotd.tap"], cwd=twisted_dir, check=True)
        cases.append(Case("Twisted daemon (epoll)", [str(twisted), "-o", "-f", "qotd.tap"], twisted_dir, tport,
                          daemon=True))
        cases.append(Case("Twisted foreground (epoll)", [str(twisted), "-n", "-o", "-f", "qotd.tap"], twisted_dir,
                          tport, daemon=False))
    return cases


def ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}"


def render(cases: list[Case], floor: list[float], meta: dict[str, str]) -> str:
    lines = [
        "| case | to first accepted connection, median ms | min–max ms | daemon's launcher returned, median ms |",
        "|---|---:|---:|---:|",
    ]
    for case in cases:
        spread = f"{min(case.samples) * 1000:.0f}–{max(case.samples) * 1000:.0f}"
        launcher = ms(case.launcher) if case.launcher else "–"
        lines.append(f"| {case.label} | {ms(case.samples)} | {spread} | {launcher} |")
    lines.append(f"| python -c pass (floor) | {ms(floor)} | {min(floor) * 1000:.0f}–{max(floor) * 1000:.0f} | – |")
    by_label = {c.label: c for c in cases}
    ratios = []
    for mode in ("daemon", "foreground"):
        ours, theirs = by_label.get(f"tapster {mode} (uvloop)"), by_label.get(f"Twisted {mode} (epoll)")
        if ours and theirs:
            ratio = statistics.median(ours.samples) / statistics.median(theirs.samples)
            ratios.append(f"{mode}: tapster takes {ratio:.2f}× Twisted's time")
    text = "\n".join(lines)
    if ratios:
        text += "\n\n" + "; ".join(ratios) + "."
    text += "\n\n" + ", ".join(f"{k} {v}" for k, v in meta.items())
    return text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time from `twistd -f qotd.tap` to the port accepting: tapster vs Twisted, "
                    "daemon and foreground (medians)."
    )
    parser.add_argument("-n", "--runs", type=int, default=15, help="timed runs per case (default 15)")
    parser.add_argument("--tapster-bin", type=Path, default=Path(sys.executable).parent,
                        help="directory holding tapster's mktap and twistd (default: next to this python)")
    parser.add_argument("--no-twisted", action="store_true", help="skip Twisted (no venv needed)")
    parser.add_argument("--no-asyncio", action="store_true", help="skip tapster's -r asyncio cases")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for name in ("mktap", "twistd"):
        if not os.access(args.tapster_bin / name, os.X_OK):
            log(f"startup: {args.tapster_bin / name} not found (pip install -e {REPO_DIR} into this venv)")
            return 1
    twisted = None if args.no_twisted else ensure_twisted_venv()
    with tempfile.TemporaryDirectory(prefix="tapster-startup-") as tmp:
        cases = build_cases(Path(tmp), args.tapster_bin, twisted, not args.no_asyncio)
        for case in cases:
            log(f"startup: warming up {case.label}")
            run_once(case, 0)
            case.samples.clear()
            case.launcher.clear()
        for i in range(1, args.runs + 1):
            for case in cases:
                run_once(case, i)
            log(f"startup: round {i}/{args.runs} done")
    floor = floor_case(sys.executable, args.runs)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "runs": str(args.runs),
    }
    print(render(cases, floor, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
