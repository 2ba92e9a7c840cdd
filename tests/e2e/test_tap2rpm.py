"""tap2rpm as a user runs it: mktap qotd, tap2rpm, then rpm -qip / -qlp / --scripts / --configfiles."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import command
from tests.e2e._packages import MAINTAINER, mktap, one_line, wheelhouse  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="no rpmbuild (apt-get install rpm)")

APP = "tapsterrpm"


def tap2rpm(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([command("tap2rpm"), *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


def rpm(*argv: str) -> str:
    return subprocess.run(["rpm", *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    work = tmp_path_factory.mktemp("rpm")
    mktap(work, "-n", APP, "qotd", "--port", "80")
    done = tap2rpm(work, "-t", f"{APP}.tap", "--maintainer", MAINTAINER, "--version", "1.0", "--user", APP,
                   "--wheelhouse", str(wheelhouse))
    assert done.returncode == 0, done.stderr
    assert "wrote" in one_line(done.stderr)
    (package,) = work.glob("*.rpm")
    return package


def test_rpm_metadata_files_config_and_scripts(built: Path) -> None:
    assert built.name == f"tapster-{APP}-1.0-1.{os.uname().machine}.rpm"
    info = rpm("-qip", str(built))
    assert f"Name        : tapster-{APP}" in info and "Version     : 1.0" in info and MAINTAINER in info
    files = rpm("-qlp", str(built)).splitlines()
    for path in (f"/etc/{APP}/{APP}.tap", f"/usr/lib/systemd/system/tapster-{APP}.service", f"/opt/{APP}/bin/twistd"):
        assert path in files, path
    assert rpm("-qp", "--configfiles", str(built)).split() == [f"/etc/{APP}/{APP}.tap"]
    assert "python(abi) = 3." in rpm("-qpR", str(built))
    scripts = rpm("-qp", "--scripts", str(built))
    assert f"useradd -r -g {APP}" in scripts and "[ -d /run/systemd/system ]" in scripts
    assert "systemctl --no-reload disable --now" in scripts and "try-restart" in scripts
    owners = rpm("-qp", "--qf", "[%{FILEUSERNAME} %{FILENAMES}\\n]", str(built)).splitlines()
    assert owners and all(line.startswith("root /") for line in owners)
    assert not any("/tmp/" in line for line in owners)


def test_unit_in_rpm_grants_the_low_port(built: Path, tmp_path: Path) -> None:
    subprocess.run(f"rpm2archive - < {built} | tar -xzf -", shell=True, cwd=tmp_path, check=True)
    unit = (tmp_path / f"usr/lib/systemd/system/tapster-{APP}.service").read_text()
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit and f"User={APP}" in unit
    assert f"ExecStart=/opt/{APP}/bin/twistd -n --pidfile= -f /etc/{APP}/{APP}.tap" in unit
    assert (tmp_path / f"opt/{APP}/bin/twistd").read_text().startswith(f"#!/opt/{APP}/bin/python\n")


def test_low_port_refused_without_capability_writes_nothing(tmp_path: Path, wheelhouse: Path) -> None:
    mktap(tmp_path, "-n", APP, "qotd", "--port", "80")
    done = tap2rpm(tmp_path, "-t", f"{APP}.tap", "-m", MAINTAINER, "--no-capabilities", "--wheelhouse", str(wheelhouse))
    assert done.returncode == 1 and "port 80 (below 1024)" in one_line(done.stderr)
    assert not list(tmp_path.glob("*.rpm")) and not list(tmp_path.glob(".*.tmp"))
