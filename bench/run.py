#!/usr/bin/env python3
"""Side-by-side benchmark: tapster's twistd vs Twisted's twistd vs a C epoll ceiling.

Run it with the project's virtualenv python (stdlib only)::

    /work/venv/bin/python bench/run.py            # 5 rounds of 3 s per test
    /work/venv/bin/python bench/run.py --quick    # 1 round of 1 s: smoke test

What one run does (bench/README.md has the details and the reasons):

1. builds ``loadgen`` and ``ceiling`` from ``<repo>/../shared/tools`` into
   ``bench/.build/`` (skipped when the binaries are newer than their sources);
2. creates ``bench/.venv-twisted/`` with Twisted from PyPI once, and reuses it;
3. starts every server pinned to one CPU, loadgen pinned to another:

   - ``ceiling``           the C epoll echo + QOTD server (one process);
   - ``bare-uvloop``       an inline uvloop ``asyncio.Protocol`` echo + QOTD (one process);
   - ``twisted``           Twisted's ``twistd -n -o -y bench.tac`` on its default (epoll)
                           reactor, echo + QOTD in one process;
   - ``tapster-uvloop``    tapster's real commands: ``mktap echo --port ...`` and
                           ``mktap qotd --port ...`` write ``echo.tap`` / ``qotd.tap``; each is
                           served by its own ``twistd -n -o -r uvloop -f X.tap`` process;
   - ``tapster-asyncio``   the same with ``-r asyncio``;

4. for R rounds, for each server in turn: ``loadgen echo`` (round trips/s), ``loadgen
   stream`` (MB/s) and ``loadgen connect`` against QOTD while reading the server's CPU time
   from ``/proc/PID/stat`` (CPU µs per connection: on two cores the connect rate is bound
   by the client, the server's CPU per connection is the comparable figure);
5. prints medians and the median of per-round ratios as a Markdown table, also written to
   ``bench/results/latest.md`` (raw per-round numbers in ``bench/results/latest.json``);
6. stops every server it started (SIGTERM, then SIGKILL after a deadline), also on
   Ctrl-C and on errors.

This script is deliberately not part of the pytest suite: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
DEFAULT_TOOLS_DIR = REPO_DIR.parent / "shared" / "tools"
BUILD_DIR = BENCH_DIR / ".build"
TWISTED_VENV = BENCH_DIR / ".venv-twisted"
RESULTS_DIR = BENCH_DIR / "results"

#: The line every QOTD server here sends: the same bytes as the C ceiling's.
QUOTE = b"An apple a day keeps the doctor away.\r\n"

#: Seconds a server gets to open its ports, and to exit after SIGTERM.
START_DEADLINE = 30.0
STOP_DEADLINE = 5.0

# -- the servers ---------------------------------------------------------------------------------

#: Order of the columns, and the default set of servers.
SERVER_NAMES = ("ceiling", "bare-uvloop", "twisted", "tapster-uvloop", "tapster-asyncio")

SERVER_LABELS = {
    "ceiling": "C epoll ceiling",
    "bare-uvloop": "bare uvloop asyncio.Protocol",
    "twisted": "Twisted twistd (epoll)",
    "tapster-uvloop": "tapster twistd -r uvloop",
    "tapster-asyncio": "tapster twistd -r asyncio",
}

SHORT_LABELS = {
    "ceiling": "ceiling",
    "bare-uvloop": "bare uvloop",
    "twisted": "Twisted",
    "tapster-uvloop": "tapster uvloop",
    "tapster-asyncio": "tapster asyncio",
}

TWISTED_TAC = '''\
# Written by tapster's bench/run.py: the Twisted side of the benchmark.
from twisted.application import internet, service
from twisted.internet import protocol


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class QOTD(protocol.Protocol):
    def connectionMade(self):
        self.transport.write({quote!r})
        self.transport.loseConnection()


application = service.Application("tapster-bench")
internet.TCPServer({echo_port}, protocol.Factory.forProtocol(Echo),
                   interface="127.0.0.1").setServiceParent(application)
internet.TCPServer({qotd_port}, protocol.Factory.forProtocol(QOTD),
                   interface="127.0.0.1").setServiceParent(application)
'''

BARE_UVLOOP_SERVER = '''\
# Written by tapster's bench/run.py: raw uvloop, no protocol/transport layer on top.
import asyncio, signal, sys
import uvloop

QUOTE = {quote!r}


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class QOTD(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(QUOTE)
        transport.close()


async def main(echo_port, qotd_port):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    echo = await loop.create_server(Echo, "127.0.0.1", echo_port, backlog=50)
    qotd = await loop.create_server(QOTD, "127.0.0.1", qotd_port, backlog=50)
    await stop.wait()
    echo.close()
    qotd.close()


uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
'''


@dataclass
class Proc:
    """One server process we started: kept so it can be stopped whatever happens."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    """A server under test: where its echo and QOTD listen and which process serves each."""

    name: str
    echo_port: int
    qotd_port: int
    echo_proc: Proc | None = None
    qotd_proc: Proc | None = None

    @property
    def procs(self) -> list[Proc]:
        seen: list[Proc] = []
        for proc in (self.echo_proc, self.qotd_proc):
            if proc is not None and proc not in seen:
                seen.append(proc)
        return seen


@dataclass
class Context:
    """Everything the benchmark needs to start servers and run the load generator."""

    args: argparse.Namespace
    workdir: Path
    loadgen: Path
    ceiling: Path
    twistd_twisted: Path
    mktap: Path
    twistd_tapster: Path
    procs: list[Proc] = field(default_factory=list)


# -- small helpers -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now; held open together so no two are the same."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_port(port: int, proc: Proc, deadline: float = START_DEADLINE) -> None:
    """Poll-connect until ``port`` accepts, the process dies, or the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with status {proc.popen.returncode} before listening on "
                f"port {port}; its output:\n{proc.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(
                    f"{proc.name} did not listen on port {port} within {deadline:.0f} s; "
                    f"its output:\n{proc.log_tail()}"
                ) from None
            time.sleep(0.02)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def parse_result(output: str) -> dict[str, float | str]:
    """The ``RESULT key=value ...`` line loadgen prints last, numbers as floats."""
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, float | str] = {}
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                try:
                    result[key] = float(value)
                except ValueError:
                    result[key] = value
            return result
    raise ValueError(f"no RESULT line in loadgen output: {output[-500:]!r}")


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def newer_than(target: Path, sources: Sequence[Path]) -> bool:
    if not target.exists():
        return False
    mtime = target.stat().st_mtime
    return all(mtime >= s.stat().st_mtime for s in sources if s.exists())


# -- preparation ---------------------------------------------------------------------------------


def build_tools(tools_dir: Path, build_dir: Path = BUILD_DIR) -> tuple[Path, Path]:
    """Compile loadgen and ceiling unless the binaries are newer than their sources."""
    script = tools_dir / "build.sh"
    sources = [script, tools_dir / "loadgen.c", tools_dir / "ceiling.c"]
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise RuntimeError(f"benchmark tools not found: {missing[0]} (use --tools DIR)")
    loadgen, ceiling = build_dir / "loadgen", build_dir / "ceiling"
    if newer_than(loadgen, sources) and newer_than(ceiling, sources):
        log(f"tools: {build_dir} is up to date")
    else:
        log(f"tools: building into {build_dir}")
        subprocess.run(["sh", str(script), str(build_dir)], check=True, stdout=sys.stderr)
    return loadgen, ceiling


def ensure_twisted_venv(venv: Path = TWISTED_VENV) -> Path:
    """A virtualenv with Twisted from PyPI, created once and used only by the benchmark."""
    twistd = venv / "bin" / "twistd"
    if twistd.exists():
        return twistd
    log(f"twisted: creating {venv} (once) and installing Twisted from PyPI")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "twisted"],
        check=True,
        stdout=sys.stderr,
    )
    if not twistd.exists():
        raise RuntimeError(f"installing Twisted did not produce {twistd}")
    return twistd


def tapster_commands(bin_dir: Path) -> tuple[Path, Path]:
    mktap, twistd = bin_dir / "mktap", bin_dir / "twistd"
    for command in (mktap, twistd):
        if not os.access(command, os.X_OK):
            raise RuntimeError(
                f"tapster command not found: {command} "
                f"(install the project into this venv: {sys.executable} -m pip install -e {REPO_DIR}; "
                "or point --tapster-bin at the directory holding mktap and twistd)"
            )
    return mktap, twistd


def version_of(python: Path | str, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    try:
        out = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return "unknown"


# -- starting and stopping servers ---------------------------------------------------------------


def spawn(ctx: Context, name: str, argv: Sequence[str], cwd: Path) -> Proc:
    """Start a server pinned to the server CPU, in its own session so Ctrl-C reaches only us."""
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = cwd / "server.log"
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            ["taskset", "-c", str(ctx.args.server_cpu), *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, popen, log_path)
    ctx.procs.append(proc)
    return proc


def stop_all(procs: list[Proc]) -> None:
    """SIGTERM every server we started, then SIGKILL whatever is left after the deadline."""
    for proc in procs:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + STOP_DEADLINE
    for proc in procs:
        try:
            proc.popen.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{proc.name}: no exit {STOP_DEADLINE:.0f} s after SIGTERM, killing it")
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.popen.wait()
        else:
            status = proc.popen.returncode
            if status not in (0, -signal.SIGTERM):
                # Not fatal to the benchmark, but a server should stop cleanly on SIGTERM.
                log(f"{proc.name}: exited with status {status} after SIGTERM:\n{proc.log_tail(5)}")
            # Also the group: anything the server itself started (it runs in its own session).
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    procs.clear()


def start_ceiling(ctx: Context, server: Server) -> None:
    proc = spawn(
        ctx,
        "ceiling",
        [str(ctx.ceiling), "-q", str(server.qotd_port), "-e", str(server.echo_port)],
        ctx.workdir / "ceiling",
    )
    server.echo_proc = server.qotd_proc = proc


def start_bare_uvloop(ctx: Context, server: Server) -> None:
    cwd = ctx.workdir / "bare-uvloop"
    cwd.mkdir(parents=True, exist_ok=True)
    script = cwd / "bare_uvloop.py"
    script.write_text(BARE_UVLOOP_SERVER.format(quote=QUOTE))
    argv = [sys.executable, str(script), str(server.echo_port), str(server.qotd_port)]
    server.echo_proc = server.qotd_proc = spawn(ctx, "bare-uvloop", argv, cwd)


def start_twisted(ctx: Context, server: Server) -> None:
    cwd = ctx.workdir / "twisted"
    cwd.mkdir(parents=True, exist_ok=True)
    tac = cwd / "bench.tac"
    tac.write_text(
        TWISTED_TAC.format(quote=QUOTE, echo_port=server.echo_port, qotd_port=server.qotd_port)
    )
    argv = [str(ctx.twistd_twisted), "-n", "-o", "-y", str(tac)]
    server.echo_proc = server.qotd_proc = spawn(ctx, "twisted", argv, cwd)


def start_tapster(ctx: Context, server: Server, reactor: str) -> None:
    """``mktap <plugin> --port ...`` then one ``twistd -n -o -r REACTOR -f <plugin>.tap`` each.

    Each process gets its own working directory: twistd writes its pidfile there.
    """
    for plugin, port in (("echo", server.echo_port), ("qotd", server.qotd_port)):
        cwd = ctx.workdir / f"tapster-{reactor}-{plugin}"
        cwd.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            [str(ctx.mktap), plugin, "--port", f"tcp:{port}:interface=127.0.0.1"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        tap = cwd / f"{plugin}.tap"
        if made.returncode != 0 or not tap.exists():
            raise RuntimeError(
                f"mktap {plugin} failed (status {made.returncode}, {tap.name} "
                f"{'exists' if tap.exists() else 'missing'}):\n{made.stderr.strip()}"
            )
        argv = [str(ctx.twistd_tapster), "-n", "-o", "-r", reactor, "-f", tap.name]
        proc = spawn(ctx, f"tapster-{reactor}-{plugin}", argv, cwd)
        if plugin == "echo":
            server.echo_proc = proc
        else:
            server.qotd_proc = proc


STARTERS: dict[str, Callable[[Context, Server], None]] = {
    "ceiling": start_ceiling,
    "bare-uvloop": start_bare_uvloop,
    "twisted": start_twisted,
    "tapster-uvloop": lambda ctx, server: start_tapster(ctx, server, "uvloop"),
    "tapster-asyncio": lambda ctx, server: start_tapster(ctx, server, "asyncio"),
}


def start_servers(ctx: Context, names: Sequence[str]) -> list[Server]:
    ports = free_ports(2 * len(names))
    servers = [Server(name, ports[2 * i], ports[2 * i + 1]) for i, name in enumerate(names)]
    for server in servers:
        log(f"start: {server.name} (echo :{server.echo_port}, qotd :{server.qotd_port})")
        STARTERS[server.name](ctx, server)
    for server in servers:
        assert server.echo_proc is not None and server.qotd_proc is not None
        wait_for_port(server.echo_port, server.echo_proc)
        wait_for_port(server.qotd_port, server.qotd_proc)
    return servers


# -- measuring -----------------------------------------------------------------------------------

#: metric key -> (row label, unit, higher is better, number format)
METRICS: dict[str, tuple[str, str, bool, str]] = {
    "echo": ("echo, c=50", "round trips/s", True, ",.0f"),
    "stream": ("stream, c=4, 64 KiB blocks", "MB/s", True, ",.0f"),
    "connect_cpu": ("QOTD connect, c=50: server CPU", "µs/conn", False, ".1f"),
    # The server's CPU time per unit of work during the echo and stream runs: rates swing
    # when other processes share the cores, CPU time per operation much less. Informative,
    # not a goal: a server that is not saturated batches less and spends more per operation.
    "echo_cpu": ("echo: server CPU", "µs/round trip", False, ".2f"),
    "stream_cpu": ("stream: server CPU", "µs/MB", False, ",.0f"),
    "connect_rate": ("QOTD connect: rate (client-bound)", "conn/s", True, ",.0f"),
}

#: Goals for tapster on its default reactor: (metric, baseline server, minimum ratio).
GOALS: list[tuple[str, str, float]] = [
    ("echo", "twisted", 2.0),
    ("echo", "ceiling", 0.8),
    ("stream", "twisted", 1.5),
]


def loadgen(ctx: Context, mode: str, port: int, *extra: str) -> dict[str, float | str]:
    argv = [
        "taskset", "-c", str(ctx.args.client_cpu), str(ctx.loadgen), mode,
        "-p", str(port), "-d", f"{ctx.args.duration:g}", *extra,
    ]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as lg:
        try:
            stdout, stderr = lg.communicate(timeout=ctx.args.duration + 60)
        except BaseException:  # timeout, Ctrl-C, SIGTERM: never leave loadgen behind or unreaped
            lg.kill()
            lg.wait()
            raise
    if lg.returncode != 0:
        raise RuntimeError(f"loadgen {mode} failed ({lg.returncode}): {stderr.strip()}")
    result = parse_result(stdout)
    if result.get("errors", 0):
        log(f"  warning: loadgen {mode} on :{port} reported {result['errors']:.0f} errors")
    return result


def check_alive(server: Server) -> None:
    for proc in server.procs:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} died (status {proc.popen.returncode}); its output:\n{proc.log_tail()}"
            )


def measure(ctx: Context, server: Server) -> dict[str, float | None]:
    """One round for one server: echo, stream, then QOTD connect, with server CPU accounting.

    The CPU time is read from the process serving that port before and after each loadgen
    run and divided by the work loadgen counted (round trips, MB received, connections).
    """
    check_alive(server)
    assert server.echo_proc is not None and server.qotd_proc is not None
    echo_pid, qotd_pid = server.echo_proc.popen.pid, server.qotd_proc.popen.pid

    cpu0 = cpu_seconds(echo_pid)
    echo = loadgen(ctx, "echo", server.echo_port, "-c", "50")
    cpu1 = cpu_seconds(echo_pid)
    stream = loadgen(ctx, "stream", server.echo_port, "-c", "4", "-s", "65536")
    cpu2 = cpu_seconds(echo_pid)
    qotd0 = cpu_seconds(qotd_pid)
    connect = loadgen(ctx, "connect", server.qotd_port, "-c", "50")
    qotd1 = cpu_seconds(qotd_pid)
    check_alive(server)
    return {
        "echo": float(echo["rate"]),
        "stream": float(stream["rate"]),
        "connect_cpu": _per(qotd1 - qotd0, float(connect["ops"]), 1e6),
        "connect_rate": float(connect["rate"]),
        "echo_cpu": _per(cpu1 - cpu0, float(echo["ops"]), 1e6),
        "stream_cpu": _per(cpu2 - cpu1, float(stream["bytes_in"]) / 1e6, 1e6),
    }


def _per(cpu: float, work: float, scale: float) -> float | None:
    return cpu / work * scale if work > 0 else None


def rotated(items: Sequence[str], by: int) -> list[str]:
    """Round r starts with a different server, so no server always runs first or last."""
    by %= len(items)
    return [*items[by:], *items[:by]]


def run_rounds(ctx: Context, servers: list[Server]) -> dict[str, dict[str, list[float | None]]]:
    """results[server][metric] = one value per round (None when that measurement failed)."""
    results = {s.name: {m: [] for m in METRICS} for s in servers}
    by_name = {s.name: s for s in servers}
    for round_no in range(ctx.args.rounds):
        for name in rotated(list(by_name), round_no):
            values = measure(ctx, by_name[name])
            for metric, value in values.items():
                results[name][metric].append(value)
            log(
                f"round {round_no + 1}/{ctx.args.rounds} {name:16} "
                + "  ".join(
                    f"{metric} {fmt_value(metric, value)}" for metric, value in values.items()
                )
            )
    return results


# -- reporting -----------------------------------------------------------------------------------


def round_ratios(
    results: dict[str, dict[str, list[float | None]]], metric: str, num: str, den: str
) -> list[float]:
    """num/den within each round: both were measured minutes apart at most, under the same noise."""
    if num not in results or den not in results:
        return []
    pairs = zip(results[num][metric], results[den][metric], strict=False)
    return [a / b for a, b in pairs if a is not None and b]


def fmt_value(metric: str, value: float | None) -> str:
    return "n/a" if value is None else format(value, METRICS[metric][3])


def fmt_ratio(ratios: list[float], goal: float | None = None, higher: bool = True) -> str:
    """Median ratio, the per-round range (how much to trust it), and the goal mark if any.

    ``higher``: the goal is a floor (rates); False makes it a ceiling (CPU per operation).
    """
    if not ratios:
        return "n/a"
    r = statistics.median(ratios)
    text = f"{r:.2f}×"
    if len(ratios) > 1:
        text += f" [{min(ratios):.2f}–{max(ratios):.2f}]"
    if goal is not None:
        met = r >= goal if higher else r < goal
        text += f" {'✓' if met else '✗'} goal {'≥' if higher else '<'} {goal:g}×"
    return text


RATIO_COLUMNS = [
    ("tapster-uvloop", "twisted"),
    ("tapster-uvloop", "ceiling"),
    ("tapster-uvloop", "bare-uvloop"),
    ("tapster-asyncio", "twisted"),
    ("tapster-asyncio", "ceiling"),
]


def render_markdown(
    results: dict[str, dict[str, list[float | None]]], meta: dict[str, str]
) -> str:
    names = [n for n in SERVER_NAMES if n in results]
    lines = ["# tapster benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "## Medians", ""]
    lines.append("| metric | unit | " + " | ".join(SERVER_LABELS[n] for n in names) + " |")
    lines.append("|---|---|" + "---:|" * len(names))
    for metric, (label, unit, _, _) in METRICS.items():
        cells = [fmt_value(metric, median_or_none(results[n][metric])) for n in names]
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    lines += ["", "## Median of per-round ratios", ""]
    columns = [(a, b) for a, b in RATIO_COLUMNS if a in results and b in results]
    header = [f"{SHORT_LABELS[a]} / {SHORT_LABELS[b]}" for a, b in columns]
    lines.append("| metric | " + " | ".join(header) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for metric, (label, unit, higher, _) in METRICS.items():
        cells = []
        for a, b in columns:
            goal = next(
                (g for m, base, g in GOALS if m == metric and base == b and a == "tapster-uvloop"),
                None,
            )
            cells.append(fmt_ratio(round_ratios(results, metric, a, b), goal))
        suffix = " (lower is better)" if not higher else ""
        lines.append(f"| {label}, {unit}{suffix} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios are computed within each round; the median over rounds is shown, with the "
        "range over rounds in brackets. Goals "
        "(for tapster on its default reactor, uvloop): echo ≥ 2× Twisted and ≥ 0.8× ceiling; "
        "stream ≥ 1.5× Twisted. On two cores the QOTD connect rate is bound by the client, so "
        "the server CPU time per connection is the figure to compare there (lower is better). "
        "Server CPU per round trip and per MB are steadier than rates when the machine is "
        "shared; they are shown for information.",
        "",
    ]
    return "\n".join(lines)


def collect_meta(ctx: Context, argv: Sequence[str]) -> dict[str, str]:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip() or "unknown"  # fmt: skip
    except OSError:
        rev = "unknown"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    twisted_python = ctx.twistd_twisted.parent / "python"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python", "bench/run.py", *argv]),
        "tapster": f"git {rev}, {ctx.twistd_tapster}",
        "Twisted": version_of(twisted_python, "twisted") + " (default reactor: epoll)",
        "Python": platform.python_version() + f", uvloop {version_of(sys.executable, 'uvloop')}",
        "machine": f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        "pinning": f"servers on CPU {ctx.args.server_cpu}, loadgen on CPU {ctx.args.client_cpu}",
        "rounds": f"{ctx.args.rounds} × {ctx.args.duration:g} s per test",
    }


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark tapster's twistd against Twisted's twistd and a C epoll server.",
        epilog="See bench/README.md. Results go to bench/results/latest.md (and .json).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every test (default 5)")
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds per loadgen run (default 3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 round of 1 s (overrides the above)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_NAMES),
        help=f"comma-separated subset of: {', '.join(SERVER_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--tools",
        type=Path,
        default=DEFAULT_TOOLS_DIR,
        help="directory with build.sh, loadgen.c, ceiling.c (default: <repo>/../shared/tools)",
    )
    parser.add_argument(
        "--tapster-bin",
        type=Path,
        default=Path(sys.executable).parent,
        help="directory holding tapster's mktap and twistd (default: this python's bin/)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for servers (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU for loadgen (default 1)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.md", help="Markdown table to write"
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (tap files, server logs)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be ≥ 1 and --duration > 0")
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVER_NAMES]
    if unknown or not names:
        parser.error(f"unknown server {unknown[0] if unknown else '(none)'}; choose from {SERVER_NAMES}")
    args.server_names = [n for n in SERVER_NAMES if n in names]
    return args


class _Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: unwind through ``finally`` so the servers get stopped."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise _Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="tapster-bench-"))
    ctx: Context | None = None
    try:
        loadgen_bin, ceiling_bin = build_tools(args.tools)
        twisted_twistd = (
            ensure_twisted_venv() if "twisted" in args.server_names else TWISTED_VENV / "bin/twistd"
        )
        wants_tapster = any(n.startswith("tapster-") for n in args.server_names)
        mktap, twistd = (
            tapster_commands(args.tapster_bin)
            if wants_tapster
            else (args.tapster_bin / "mktap", args.tapster_bin / "twistd")
        )
        ctx = Context(args, workdir, loadgen_bin, ceiling_bin, twisted_twistd, mktap, twistd)
        servers = start_servers(ctx, args.server_names)
        results = run_rounds(ctx, servers)
        table = render_markdown(results, collect_meta(ctx, argv))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table)
        args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        print(table)
        log(f"written: {args.output} and {args.output.with_suffix('.json')}")
        return 0
    except (KeyboardInterrupt, _Interrupted):
        log("interrupted: stopping servers")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"bench: error: {exc}")
        return 1
    finally:
        if ctx is not None:
            # A second Ctrl-C during clean-up must not leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            stop_all(ctx.procs)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep_temp:
            log(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
