"""tap2deb as a user runs it: mktap qotd, tap2deb, dpkg-deb --info/--contents, and (as root) dpkg -i/-r/-P."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e._e2e import command, free_port, wait_for_port
from tests.e2e._packages import MAINTAINER, mktap, one_line, wheelhouse  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")

APP = "tapstere2e"
PACKAGE = f"tapster-{APP}"


def tap2deb(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # homemade.py below: importable, but no distribution's
    return subprocess.run([command("tap2deb"), *argv], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> tuple[Path, int]:
    work = tmp_path_factory.mktemp("deb")
    port = free_port()
    mktap(work, "-n", APP, "qotd", "--port", f"tcp:{port}:interface=127.0.0.1", "--static", "Packaged quote.")
    done = tap2deb(work, "-t", f"{APP}.tap", "--maintainer", MAINTAINER, "--version", "1.0",
                   "--description", "Packaged quote of the day", "--user", APP, "--wheelhouse", str(wheelhouse),
                   "--health", "tcp:0:interface=127.0.0.1")
    assert done.returncode == 0, done.stderr
    debs = list(work.glob("*.deb"))
    assert len(debs) == 1 and "wrote" in one_line(done.stderr)
    return debs[0], port


def test_package_name_info_and_contents(built) -> None:
    deb, _ = built
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert deb.name == f"{PACKAGE}_1.0_{arch}.deb"  # cryptography, uvloop...: native wheels
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True).stdout
    for field in (f"Package: {PACKAGE}", "Version: 1.0", f"Maintainer: {MAINTAINER}",
                  "Description: Packaged quote of the day",
                  "python3 (>= 3.", "adduser", "conffiles", "postinst", "prerm", "postrm"):
        assert field in info, info
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    assert f"/etc/{APP}/{APP}.tap".encode() in conffiles
    contents = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in (f"./etc/{APP}/{APP}.tap", f"./lib/systemd/system/{PACKAGE}.service", f"./opt/{APP}/bin/twistd",
                 f"./opt/{APP}/pyvenv.cfg", f"./usr/share/doc/{PACKAGE}/copyright"):
        assert path in contents, path
    assert "root/root" in contents and "/tmp/" not in contents


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian is not installed (.ci/run installs it)")
def test_lintian_finds_no_errors_and_no_warnings(built) -> None:
    deb, _ = built
    checked = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)], capture_output=True, text=True,
                             timeout=300)
    tags = [line for line in checked.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert checked.returncode == 0 and tags == [], checked.stdout + checked.stderr


def test_unit_and_maintainer_scripts(built, tmp_path: Path) -> None:
    deb, _ = built
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "ctl")], check=True)
    unit = (tmp_path / "root" / "lib/systemd/system" / f"{PACKAGE}.service").read_text()
    assert f"ExecStart=/opt/{APP}/bin/twistd -n --pidfile= --health tcp:0:interface=127.0.0.1 -f /etc/{APP}/{APP}.tap" \
        in unit
    assert f"User={APP}" in unit and "Type=notify" in unit
    twistd = (tmp_path / "root" / f"opt/{APP}/bin/twistd").read_text()
    assert twistd.startswith(f"#!/opt/{APP}/bin/python\n")
    assert "command" not in (tmp_path / "root" / f"opt/{APP}/pyvenv.cfg").read_text()
    postinst = (tmp_path / "ctl" / "postinst").read_text()
    assert "adduser --system" in postinst and "[ -d /run/systemd/system ]" in postinst
    assert "deb-systemd-invoke $_dh_action" in postinst
    assert "deb-systemd-invoke stop" in (tmp_path / "ctl" / "prerm").read_text()
    postrm = (tmp_path / "ctl" / "postrm").read_text()
    assert f"rm -rf /var/lib/{APP}" in postrm.split('"purge"')[1]
    for script in ("postinst", "prerm", "postrm"):
        subprocess.run(["sh", "-n", str(tmp_path / "ctl" / script)], check=True)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dpkg") is None, reason="installing a package needs root")
def test_install_serve_remove_purge(built) -> None:
    deb, port = built
    subprocess.run(["dpkg", "-P", PACKAGE], capture_output=True)
    done = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True, timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        conf = Path(f"/etc/{APP}/{APP}.tap")
        assert conf.is_file() and Path(f"/opt/{APP}/bin/twistd").is_file()
        assert subprocess.run(["getent", "passwd", APP], capture_output=True).returncode == 0
        assert Path(f"/var/lib/{APP}").is_dir() and oct(conf.stat().st_mode & 0o777) == "0o640"
        unit = Path(f"/lib/systemd/system/{PACKAGE}.service").read_text()
        if shutil.which("systemd-analyze"):
            verify = subprocess.run(["systemd-analyze", "verify", f"/lib/systemd/system/{PACKAGE}.service"],
                                    capture_output=True, text=True, timeout=30)
            assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stderr
        exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
        argv = shlex.split(exec_start)
        server = subprocess.Popen(argv, cwd=f"/var/lib/{APP}", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env={"PATH": "/usr/bin:/bin"})
        try:
            wait_for_port(port, server)
            quote = subprocess.run(["nc", "-N", "127.0.0.1", str(port)], capture_output=True, text=True,
                                   timeout=10, stdin=subprocess.DEVNULL)
            assert "Packaged quote." in quote.stdout
        finally:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
        assert server.returncode == 0
        Path(f"/etc/{APP}/passphrase").write_text("admin's file\n")
        removed = subprocess.run(["dpkg", "-r", PACKAGE], capture_output=True, text=True, timeout=60)
        assert removed.returncode == 0, removed.stderr
        assert conf.is_file(), "dpkg -r must keep the conffile"
        assert not Path(f"/opt/{APP}").exists()
        purged = subprocess.run(["dpkg", "-P", PACKAGE], capture_output=True, text=True, timeout=60)
        assert purged.returncode == 0, purged.stderr
        assert not Path(f"/etc/{APP}").exists() and not Path(f"/var/lib/{APP}").exists()
    finally:
        subprocess.run(["dpkg", "-P", PACKAGE], capture_output=True)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, wheelhouse: Path) -> None:
    mktap(tmp_path, "-n", APP, "qotd", "--port", "8007")
    out = tmp_path / "out"
    out.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "homemade.py").write_text("from tapster.core.service import Service\nclass Thing(Service):\n  pass\n")
    subprocess.run([sys.executable, "-c",
                    "import homemade; from tapster.core import persist; from tapster.core.service import Application;"
                    "a = Application('odd'); homemade.Thing().setServiceParent(a); persist.save(a, 'odd.tap')"],
                   cwd=tmp_path, check=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    cases = [
        (["-t", "nothere.tap"], "no such file: nothere.tap"),
        (["-t", f"{APP}.tap", "--wheelhouse", str(empty)], "cannot install tapster=="),
        (["-t", "odd.tap", "--wheelhouse", str(wheelhouse)], "no installed distribution provides module 'homemade'"),
        (["-t", f"{APP}.tap", "--version", "one"], "--version"),
        (["-t", f"{APP}.tap", "--maintainer", "nobody"], "--maintainer"),
    ]
    for argv, words in cases:
        done = tap2deb(tmp_path, *argv, "-d", str(out), "-m", MAINTAINER) if "--maintainer" not in argv else \
            tap2deb(tmp_path, *argv, "-d", str(out))
        assert done.returncode != 0, argv
        assert words in one_line(done.stderr), (argv, done.stderr)
        assert os.listdir(out) == [], argv
