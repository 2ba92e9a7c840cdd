#!/usr/bin/env python3
"""HTTP/1.1 keep-alive at c=50: tapster's ``twistd web`` vs Twisted's ``twistd web`` vs nginx (the C ceiling).

Run it from the repo root with the python of the venv tapster is installed in (stdlib only; needs
``wrk``, ``nginx`` and ``taskset`` from Debian: ``apt-get install -y wrk nginx``)::

    /tmp/v1/bin/python bench/web.py            # 5 rounds of 3 s per server and test, ~1 min
    /tmp/v1/bin/python bench/web.py --quick    # 1 round of 1 s: smoke test

What one run does (bench/README.md has the details):

1. writes a document root holding ``small.html`` (1 KiB) and a ``hello.py`` WSGI module whose ``app``
   answers ``Hello, world!`` with a Content-Length, and starts five servers, each pinned to the server
   CPU with ``taskset``, each on its own free port on 127.0.0.1, each in its own session:

   - ``tapster`` static: ``twistd -n -o -r uvloop web --path ROOT --listen tcp:P:interface=127.0.0.1
     --logfile access.log``; wsgi: the same with ``--wsgi hello.app`` (and ``PYTHONPATH``);
   - ``twisted`` static and wsgi: the same command lines run by ``bench/.venv-twisted/bin/twistd``
     (Twisted's default reactor, epoll);
   - ``nginx`` static: ``nginx -p DIR -c nginx.conf`` with a configuration of its own: ``daemon off;
     master_process off; worker_processes 1;``, ``sendfile on; tcp_nopush on;`` (Debian's defaults),
     ``keepalive_requests 1000000`` (so no server closes connections under the load).

   Access logs are **on for every server**, in the combined format, to a file (``--logfile
   access.log``; nginx ``access_log access.log combined``): Twisted's ``twistd web`` has no way to turn
   its log off (without ``--logfile`` it writes every request to the twistd log);
2. checks that every server answers the test URL with the expected body;
3. for R rounds, for each test (static, wsgi), for each of its servers in turn (the first one rotates):
   ``wrk -t1 -c50 -d D`` pinned to the client CPU, keep-alive, on ``/small.html`` or ``/``; the
   server's ``utime+stime`` (all threads) is read from ``/proc/PID/stat`` before and after: server CPU
   µs per request, the steady figure when other work shares the machine;
4. prints medians and the medians of the per-round ratios (tapster/Twisted and tapster/nginx, against
   the goals: static ≥ 3× Twisted and ≥ 0.5× nginx, WSGI ≥ 2× Twisted) as a Markdown table, also
   written to ``bench/results/web.md`` (raw numbers in ``bench/results/web.json``);
5. stops every server (SIGTERM, then SIGKILL), also on Ctrl-C and on errors.

Not part of the pytest suite: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as _run

__all__ = ["main"]

RESULTS_DIR = _run.RESULTS_DIR
TESTS = ("static", "wsgi")
SERVERS = {"static": ("nginx", "twisted", "tapster"), "wsgi": ("twisted", "tapster")}
SERVER_NAMES = ("nginx", "twisted", "tapster")
LABELS = {"nginx": "nginx (C ceiling)", "twisted": "Twisted twistd web", "tapster": "tapster twistd web"}
URLS = {"static": "/small.html", "wsgi": "/"}
GOALS = {("static", "twisted"): 3.0, ("static", "nginx"): 0.5, ("wsgi", "twisted"): 2.0}

SMALL_FILE = (b"<!DOCTYPE html>\n<title>small</title>\n" + b"x" * 1024)[:1023] + b"\n"  # 1 KiB
HELLO_BODY = b"Hello, world!\n"
HELLO_APP = '''\
# Written by tapster's bench/web.py: the "hello" WSGI application both twistd web serve.
BODY = b"Hello, world!\\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
'''

NGINX_CONF = '''\
# Written by tapster's bench/web.py: one unprivileged foreground nginx process serving ROOT.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    access_log {dir}/access.log combined;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
'''


@dataclass
class Context:
    """What bench/run.py's ``spawn`` and ``stop_all`` need, and this script's own settings."""

    args: argparse.Namespace
    workdir: Path
    procs: list[_run.Proc] = field(default_factory=list)


@dataclass
class Server:
    test: str
    name: str
    port: int
    proc: _run.Proc | None = None

    @property
    def key(self) -> str:
        return f"{self.test}/{self.name}"


def start_server(ctx: Context, server: Server, root: Path, tapster: Path, twisted: Path) -> None:
    cwd = ctx.workdir / server.key.replace("/", "-")
    cwd.mkdir(parents=True, exist_ok=True)
    listen = f"tcp:{server.port}:interface=127.0.0.1"
    env = None
    if server.name == "nginx":
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (cwd / sub).mkdir(exist_ok=True)
        (cwd / "nginx.conf").write_text(NGINX_CONF.format(dir=cwd, port=server.port, root=root))
        argv = [ctx.args.nginx, "-p", str(cwd), "-c", str(cwd / "nginx.conf"), "-e", str(cwd / "error.log")]
    else:
        twistd = tapster if server.name == "tapster" else twisted
        argv = [str(twistd), "-n", "-o"]
        if server.name == "tapster":
            argv += ["-r", "uvloop"]
        argv += ["web", "--listen", listen, "--logfile", str(cwd / "access.log")]
        if server.test == "static":
            argv += ["--path", str(root)]
        else:
            argv += ["--wsgi", "hello.app"]
            env = dict(os.environ, PYTHONPATH=str(root))
    server.proc = spawn(ctx, server.key, argv, cwd, env)


def spawn(ctx: Context, name: str, argv: Sequence[str], cwd: Path, env: dict[str, str] | None) -> _run.Proc:
    """bench/run.py's ``spawn`` with an environment (PYTHONPATH for the WSGI module)."""
    if env is None:
        return _run.spawn(ctx, name, argv, cwd)  # type: ignore[arg-type]
    log_path = cwd / "server.log"
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(["taskset", "-c", str(ctx.args.server_cpu), *argv], cwd=cwd, env=env,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    proc = _run.Proc(name, popen, log_path)
    ctx.procs.append(proc)
    return proc


def check_answer(server: Server) -> None:
    """One GET with urllib: the body must be the file's (or the app's), else the run would measure errors."""
    expected = SMALL_FILE if server.test == "static" else HELLO_BODY
    url = f"http://127.0.0.1:{server.port}{URLS[server.test]}"
    deadline = time.monotonic() + _run.START_DEADLINE
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
            break
        except OSError as e:  # a WSGI server may listen a moment before its pool is ready
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.key}: GET {url} failed: {e}") from e
            time.sleep(0.05)
    if body != expected:
        raise RuntimeError(f"{server.key}: GET {url} answered {body[:80]!r}..., not the expected body")


_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")


def parse_wrk(output: str) -> tuple[int, float, int]:
    """(requests, seconds, errors) from wrk's summary."""
    m = _WRK_REQUESTS.search(output)
    if m is None:
        raise ValueError(f"no summary in wrk output: {output[-400:]!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = 0
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m2:
        errors += int(m2.group(1))
    m3 = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m3:
        errors += sum(int(g) for g in m3.groups())
    return int(m.group(1)), float(m.group(2)) * scale, errors


def measure(ctx: Context, server: Server) -> dict[str, float | None]:
    """One wrk run against ``server``: requests/s, the server's CPU µs per request, both sides' CPU use."""
    assert server.proc is not None
    a = ctx.args
    pid = server.proc.popen.pid
    url = f"http://127.0.0.1:{server.port}{URLS[server.test]}"
    before, children = _run.cpu_seconds(pid), os.times()
    done = subprocess.run(
        ["taskset", "-c", str(a.client_cpu), a.wrk, "-t1", f"-c{a.connections}", f"-d{a.duration:g}s", url],
        capture_output=True, text=True, timeout=a.duration + 60,
    )
    cpu = _run.cpu_seconds(pid) - before
    after = os.times()
    client_cpu = (after.children_user - children.children_user) + (after.children_system - children.children_system)
    if server.proc.popen.poll() is not None:
        raise RuntimeError(f"{server.key} exited during the run; its output:\n{server.proc.log_tail()}")
    failed: dict[str, float | None] = {"rate": None, "cpu": None, "server_busy": None, "client_busy": None}
    if done.returncode != 0:
        _run.log(f"{server.key}: wrk failed (status {done.returncode}): {done.stderr.strip()[-300:]}")
        return failed
    requests, secs, errors = parse_wrk(done.stdout)
    if errors:
        _run.log(f"{server.key}: wrk reported {errors} errors: {done.stdout.strip()[-300:]}")
        return failed
    return {
        "rate": requests / secs if secs else None,
        "cpu": cpu / requests * 1e6 if requests else None,
        "server_busy": cpu / secs if secs else None,
        "client_busy": client_cpu / secs if secs else None,
    }


Results = dict[str, dict[str, list[float | None]]]


def run_rounds(ctx: Context, servers: list[Server]) -> Results:
    metrics = ("rate", "cpu", "server_busy", "client_busy")
    results: Results = {s.key: {m: [] for m in metrics} for s in servers}
    for round_no in range(ctx.args.rounds):
        for test in TESTS:
            by_name = {s.name: s for s in servers if s.test == test}
            for name in _run.rotated(list(by_name), round_no):
                server = by_name[name]
                values = measure(ctx, server)
                for metric, value in values.items():
                    results[server.key][metric].append(value)
                rate, cpu, busy, cbusy = (values[k] for k in metrics)
                _run.log(f"round {round_no + 1}/{ctx.args.rounds} {server.key:15} "
                         f"req/s {'n/a' if rate is None else f'{rate:>9,.0f}'}  "
                         f"cpu µs/req {'n/a' if cpu is None else f'{cpu:7.1f}'}  "
                         f"busy: server {'n/a' if busy is None else f'{busy:.2f}'}, "
                         f"client {'n/a' if cbusy is None else f'{cbusy:.2f}'}")
    return results


def ratios(results: Results, test: str, metric: str, other: str) -> list[float]:
    """tapster/``other`` within each round."""
    mine, theirs = results.get(f"{test}/tapster"), results.get(f"{test}/{other}")
    if mine is None or theirs is None:
        return []
    return [a / b for a, b in zip(mine[metric], theirs[metric], strict=False) if a is not None and b]


def render(results: Results, meta: dict[str, str]) -> str:
    out = ["# tapster web benchmark", ""]
    out += [f"- {key}: {value}" for key, value in meta.items()]
    out += ["", "| test | metric | " + " | ".join(LABELS[n] for n in SERVER_NAMES)
            + " | tapster / Twisted | tapster / nginx |", "|---|---|" + "---:|" * (len(SERVER_NAMES) + 2)]
    rows = [("requests/s", "rate", ",.0f", True), ("server CPU µs/request (lower is better)", "cpu", ".1f", False),
            ("server CPU busy (1.0 = one core)", "server_busy", ".2f", None),
            ("client (wrk) CPU busy", "client_busy", ".2f", None)]
    for test in TESTS:
        label = {"static": "static 1 KiB file", "wsgi": "WSGI hello"}[test]
        for name, metric, spec, is_rate in rows:
            cells = []
            for server in SERVER_NAMES:
                series = results.get(f"{test}/{server}")
                value = _run.median_or_none(series[metric]) if series else None
                cells.append("–" if series is None else "n/a" if value is None else format(value, spec))
            versus = []
            for other in ("twisted", "nginx"):
                if is_rate is None or f"{test}/{other}" not in results:
                    versus.append("")
                    continue
                goal = GOALS.get((test, other)) if is_rate else None
                versus.append(_run.fmt_ratio(ratios(results, test, metric, other), goal))
            out.append(f"| {label} | {name} | " + " | ".join(cells) + " | " + " | ".join(versus) + " |")
    out += ["", "Medians over rounds; ratios are computed within each round (median, range in brackets). "
            "For CPU µs/request a ratio below 1 means tapster uses less CPU per request.", ""]
    return "\n".join(out)


def collect_meta(ctx: Context, argv: Sequence[str], tapster: Path, twisted: Path) -> dict[str, str]:
    a = ctx.args
    try:
        rev = subprocess.run(["git", "-C", str(_run.REPO_DIR), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        rev = "unknown"
    try:
        nginx = subprocess.run([a.nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    except OSError:
        nginx = "unknown"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python", "bench/web.py", *argv]),
        "tapster": f"git {rev}, {tapster} -n -o -r uvloop web; httptools "
                   + _run.version_of(sys.executable, "httptools"),
        "Twisted": _run.version_of(twisted.parent / "python", "twisted") + ", twistd -n -o web (epoll reactor)",
        "nginx": nginx.replace("nginx version: ", "") + ", one process (master_process off), sendfile on",
        "Python": platform.python_version() + f", uvloop {_run.version_of(sys.executable, 'uvloop')}",
        "load": f"wrk -t1 -c{a.connections} -d{a.duration:g}s, keep-alive; static: GET /small.html "
                f"({len(SMALL_FILE)} bytes), WSGI: GET / (a 14-byte hello app, 10 worker threads both sides)",
        "access log": "on for every server, combined format, to a file",
        "pinning": f"servers on CPU {a.server_cpu}, wrk on CPU {a.client_cpu}",
        "rounds": f"{a.rounds} × {a.duration:g} s per server and test",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/web.py",
        description="HTTP/1.1 keep-alive, c=50: tapster's twistd web vs Twisted's twistd web vs nginx.",
        epilog="See bench/README.md. Results go to bench/results/web.md (and .json).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke test")
    parser.add_argument("-c", "--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset of static,wsgi")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES),
                        help=f"comma-separated subset of {','.join(SERVER_NAMES)} (default: all)")
    parser.add_argument("--tapster-bin", type=Path, default=Path(sys.executable).parent,
                        help="directory holding tapster's twistd (default: the bin/ of this python)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary (default: on PATH)")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx",
                        help="the nginx binary (default: on PATH, else /usr/sbin/nginx)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for servers (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU for wrk (default 1)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "web.md",
                        help="Markdown table (default bench/results/web.md; raw numbers beside it as .json)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the document root, configs and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    args.tests = [t for t in args.tests.split(",") if t]
    args.servers = [n for n in args.servers.split(",") if n]
    if set(args.tests) - set(TESTS) or not args.tests:
        parser.error(f"--tests: choose from {', '.join(TESTS)}")
    if set(args.servers) - set(SERVER_NAMES) or not args.servers:
        parser.error(f"--servers: choose from {', '.join(SERVER_NAMES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _run._raise_interrupted)
    ctx = Context(args, Path(tempfile.mkdtemp(prefix="tapster-web-")))
    try:
        for tool in (args.wrk, "taskset") + ((args.nginx,) if "nginx" in args.servers else ()):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found (apt-get install -y wrk nginx util-linux)")
        _, tapster = _run.tapster_commands(args.tapster_bin)
        twisted = _run.ensure_twisted_venv() if "twisted" in args.servers else _run.TWISTED_VENV / "bin/twistd"
        root = ctx.workdir / "root"
        root.mkdir()
        (root / "small.html").write_bytes(SMALL_FILE)
        (root / "hello.py").write_text(HELLO_APP)
        wanted = [(t, n) for t in TESTS if t in args.tests for n in SERVERS[t] if n in args.servers]
        servers = [Server(t, n, p) for (t, n), p in zip(wanted, _run.free_ports(len(wanted)), strict=True)]
        for server in servers:
            _run.log(f"start: {server.key} (:{server.port})")
            start_server(ctx, server, root, tapster, twisted)
        for server in servers:
            assert server.proc is not None
            _run.wait_for_port(server.port, server.proc)
            check_answer(server)
        results = run_rounds(ctx, servers)
        table = render(results, collect_meta(ctx, argv, tapster, twisted))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table)
        args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        print(table)
        _run.log(f"written: {args.output} and {args.output.with_suffix('.json')}")
        return 0
    except (KeyboardInterrupt, _run._Interrupted):
        _run.log("interrupted: stopping servers")
        return 130
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        _run.log(f"bench: error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _run.stop_all(ctx.procs)  # type: ignore[arg-type]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep_temp:
            _run.log(f"kept: {ctx.workdir}")
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
