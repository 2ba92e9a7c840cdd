"""The web plugin end to end: real mktap/twistd, Debian's curl and wget, 127.0.0.1 only."""

from __future__ import annotations

import datetime
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import assert_one_clean_line, free_port, run, wait_for, wait_for_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")


def ep(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, timeout=timeout)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("<h1>hello</h1>\n")
    (root / "data.txt").write_text("0123456789abcdef")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


def test_static_directory_with_mktap_and_twistd(tmp_path: Path, www: Path, twistd) -> None:
    port = free_port()
    made = run("mktap", "web", "--path", "www", "--listen", ep(port), "--add-header", "X-Served-By: tapster",
               "--logfile", "access.log", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-f", "web.tap")
    wait_for_port(port, server.proc)
    base = f"http://127.0.0.1:{port}"

    # Two URLs on one curl: the second reuses the connection.
    both = curl("-v", f"{base}/", f"{base}/data.txt")
    assert both.stdout == b"<h1>hello</h1>\n0123456789abcdef", both.stderr
    assert b"Re-using existing connection" in both.stderr
    assert b"< X-Served-By: tapster" in both.stderr

    ranged = curl("-r", "2-5", "-D", "-", f"{base}/data.txt")
    assert b"206 Partial Content" in ranged.stdout and ranged.stdout.endswith(b"\r\n\r\n2345")
    assert b"416" in curl("-r", "100-200", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/data.txt").stdout

    head = curl("-sI", f"{base}/data.txt").stdout.decode()
    etag = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("etag:"))
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}",
                f"{base}/data.txt").stdout == b"304"
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-z", later, f"{base}/data.txt").stdout == b"304"

    for escape in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/data.txt%00"):
        got = curl("--path-as-is", "-o", "-", "-w", "\n%{http_code}", base + escape).stdout
        assert got.endswith((b"404", b"403")) and b"top secret" not in got, escape

    wget = shutil.which("wget")
    if wget:
        out = subprocess.run([wget, "-q", "-O", "-", f"{base}/data.txt"], capture_output=True, timeout=20)
        assert out.stdout == b"0123456789abcdef"
    assert server.stop() == 0, server.stderr
    log = (tmp_path / "access.log").read_text()
    assert '"GET /data.txt HTTP/1.1" 206 4' in log and "curl/" in log
    assert (tmp_path / "web-shutdown.tap").exists()


def _certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_and_http_from_one_twistd(tmp_path: Path, www: Path, twistd) -> None:
    cert, key = _certificate(tmp_path)
    port, tls_port = free_port(), free_port()
    server = twistd("-n", "-o", "web", "--path", "www", "--listen", ep(port),
                    "--https", f"{tls_port}:interface=127.0.0.1", "--certificate", str(cert), "--privkey", str(key))
    wait_for_port(tls_port, server.proc)
    got = curl("--cacert", str(cert), f"https://127.0.0.1:{tls_port}/data.txt", f"https://127.0.0.1:{tls_port}/")
    assert got.stdout == b"0123456789abcdef<h1>hello</h1>\n", got.stderr
    assert curl(f"http://127.0.0.1:{port}/data.txt").stdout == b"0123456789abcdef"
    assert server.stop() == 0, server.stderr


APP = '''
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s %s %d:" % (environ["REQUEST_METHOD"].encode(), environ["PATH_INFO"].encode(), len(body)), body]

not_callable = 42
'''


def test_wsgi_chunked_post(tmp_path: Path, twistd) -> None:
    (tmp_path / "webapp.py").write_text(APP)
    port = free_port()
    server = twistd("-n", "-o", "web", "--wsgi", "webapp.application", "--listen", ep(port))
    wait_for_port(port, server.proc)
    got = subprocess.run(["curl", "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                          f"http://127.0.0.1:{port}/submit"], input=b"x" * 70000, capture_output=True, timeout=20)
    assert got.stdout == b"POST /submit 70000:" + b"x" * 70000, got.stderr
    assert curl(f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b").stdout == b"GET /a 0:GET /b 0:"
    assert server.stop() == 0, server.stderr


@pytest.mark.parametrize(("kind", "filename"), [("xml", "web.tax"), ("source", "web.tas"), ("yaml", "web.yaml")])
def test_every_format_serves(tmp_path: Path, www: Path, twistd, kind: str, filename: str) -> None:
    port = free_port()
    made = run("mktap", "-t", kind, "web", "--path", "www", "--listen", ep(port), "--index", "data.txt",
               "--add-header", "X-Fmt: yes", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-o", "-f", filename)
    wait_for_port(port, server.proc)
    got = curl("-D", "-", f"http://127.0.0.1:{port}/")
    assert got.stdout.endswith(b"0123456789abcdef") and b"X-Fmt: yes" in got.stdout
    assert server.stop() == 0, server.stderr


def test_append_telnet_to_web_tap(tmp_path: Path, www: Path, twistd) -> None:
    port, console = free_port(), free_port()
    assert run("mktap", "web", "--path", "www", "--listen", ep(port), cwd=tmp_path).returncode == 0
    appended = run("mktap", "--append", "web.tap", "telnet", "--port", str(console), "-w", "secret-pw",
                   cwd=tmp_path)
    assert appended.returncode == 0, appended.stderr
    server = twistd("-n", "-o", "-f", "web.tap")
    wait_for_port(port, server.proc)
    wait_for_port(console, server.proc)
    assert curl(f"http://127.0.0.1:{port}/data.txt").stdout == b"0123456789abcdef"
    assert server.stop() == 0, server.stderr


def test_bad_input_one_line_each(tmp_path: Path, www: Path) -> None:
    (tmp_path / "webapp.py").write_text(APP)
    (tmp_path / "broken.pem").write_text("not a certificate")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        cases = [
            ("twistd", "-n", "-o", "web", "--path", "www", "--listen", ep(busy.getsockname()[1])),
            ("mktap", "web", "--listen", ep(free_port())),
            ("mktap", "web", "--path", "no-such-dir"),
            ("twistd", "-n", "-o", "web", "--path", "no-such-dir"),
            ("mktap", "web", "--wsgi", "nosuchmodule.app"),
            ("twistd", "-n", "-o", "web", "--wsgi", "webapp.not_callable"),
            ("twistd", "-n", "-o", "web", "--path", "www", "--https", str(free_port()),
             "--certificate", "broken.pem", "--privkey", "broken.pem"),
        ]
        for name, *args in cases:
            result = run(name, *args, cwd=tmp_path)
            assert_one_clean_line(result)
    finally:
        busy.close()


def test_access_log_reopens_on_sigusr1_and_refuses_a_symlink(tmp_path: Path, www: Path, twistd) -> None:
    port = free_port()
    server = twistd("-n", "-o", "web", "--path", "www", "--listen", ep(port), "--logfile", "access.log")
    wait_for_port(port, server.proc)
    base = f"http://127.0.0.1:{port}"
    assert curl(f"{base}/data.txt").stdout == b"0123456789abcdef"
    log, moved = tmp_path / "access.log", tmp_path / "access.log.1"
    wait_for(lambda: log.exists() and "GET /data.txt" in log.read_text(), "the first access line")
    log.rename(moved)  # logrotate, then its postrotate: kill -USR1
    server.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: log.exists(), "a new access.log")
    assert curl(f"{base}/").stdout == b"<h1>hello</h1>\n"
    wait_for(lambda: '"GET / HTTP/1.1" 200' in log.read_text(), "the line in the new file")
    assert "GET / " not in moved.read_text()
    assert server.stop() == 0, server.stderr
    # An access log that is a symlink (to a file root would overwrite) is refused, in one line.
    (tmp_path / "precious").write_text("keep\n")
    (tmp_path / "evil.log").symlink_to(tmp_path / "precious")
    refused = run("twistd", "-n", "-o", "web", "--path", "www", "--listen", ep(free_port()), "--logfile", "evil.log",
                  cwd=tmp_path)
    assert_one_clean_line(refused)
    assert "symbolic link" in refused.stderr and (tmp_path / "precious").read_text() == "keep\n"
