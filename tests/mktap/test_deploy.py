"""The deployment model and tap2unit in-process: ports, users, distributions, units, and bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto as _crypto
from tapster.core.plugin import build_application as build
from tapster.core.service import Application
from tapster.mktap import _deploy
from tapster.mktap.tap2unit import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_crypto, "SCRYPT_N", 2**10)
    Path("pw").write_text("right\n")
    persist.save(build("qotd", ["-p", "tcp:8007:interface=127.0.0.1"], appname="site"), "site.tap")


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_model_of_a_pickle_names_ports_and_tapster() -> None:
    d = _deploy.read_deployment("site.tap")
    assert (d.name, d.filename, d.format, d.encrypted) == ("site", "site.tap", "pickle", False)
    assert d.package == "tapster-site"
    assert [(p.kind, p.number, p.interface, p.name, p.listen_stream) for p in d.ports] == [
        ("tcp", 8007, "127.0.0.1", "qotd", "127.0.0.1:8007")]
    assert d.plugins == ("qotd",)
    assert [name for name, _ in d.distributions] == ["tapster"]
    assert not d.privileged_ports


def test_model_of_a_yaml_recipe_with_two_plugins_and_a_unix_socket() -> None:
    app = build("qotd", ["-p", "80"], appname="multi")
    for service in build("echo", ["-p", "unix:/run/multi/echo.sock"]):
        service.setServiceParent(app)
    persist.save(app, "multi.yaml", "yaml")
    d = _deploy.read_deployment("multi.yaml")
    assert d.format == "yaml" and d.plugins == ("qotd", "echo")
    assert [(p.kind, p.number, p.path) for p in d.ports] == [("tcp", 80, None), ("unix", None, "/run/multi/echo.sock")]
    assert [p.number for p in d.privileged_ports] == [80]


def test_encrypted_file_needs_the_passphrase_file() -> None:
    persist.save(build("qotd", ["-p", "8007"], appname="sec"), "sec.etap", passphrase="right")
    with pytest.raises(_deploy.DeployError, match="--passphrase-file"):
        _deploy.read_deployment("sec.etap")
    assert _deploy.read_deployment("sec.etap", "pw").encrypted


def test_a_class_from_no_distribution_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "homemade.py").write_text(
        "from tapster.core.service import Service\nclass Thing(Service):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import homemade

    app = Application("odd")
    homemade.Thing().setServiceParent(app)
    persist.save(app, "odd.tap")
    with pytest.raises(_deploy.DeployError, match=r"homemade\.Thing.*no installed distribution provides module"):
        _deploy.read_deployment("odd.tap")
    sys.modules.pop("homemade", None)


def test_tap2unit_prints_a_notify_unit(capsys) -> None:
    assert main(["-t", "site.tap", "--prefix", "/opt/site", "--health", "tcp:9100", "--drain-time", "5"]) == 0
    out = capsys.readouterr().out
    assert "Type=notify" in out
    assert ("ExecStart=/opt/site/bin/twistd -n --pidfile= --health tcp:9100 --drain-time 5 -f /etc/site/site.tap"
            in out)
    assert "ExecReload=/bin/kill -HUP $MAINPID" in out and "TimeoutStopSec=25" in out
    assert "DynamicUser=yes" in out and "AmbientCapabilities" not in out
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "StateDirectory=site", "ReadWritePaths=/var/lib/site", "WorkingDirectory=/var/lib/site"):
        assert line in out.splitlines()


def test_tap2unit_user_stateless_and_capability(capsys) -> None:
    persist.save(build("qotd", ["-p", "80"], appname="low", uid="qotd"), "low.tap")
    assert main(["-t", "low.tap", "--stateless", "--shutdown-timeout", "30"]) == 0
    out = capsys.readouterr().out
    assert "User=qotd" in out and "DynamicUser" not in out
    assert " -o --shutdown-timeout 30 -f /etc/low/low.tap" in out and "TimeoutStopSec=40" in out
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in out
    assert "stateless" in out


def test_low_port_without_capability_is_one_line_and_nothing_written(capsys) -> None:
    persist.save(build("qotd", ["-p", "80"], appname="low"), "low.tap")
    os.mkdir("units")
    assert main(["-t", "low.tap", "--no-capabilities", "-d", "units"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "port 80 (below 1024)" in line and "nothing was written" in line
    assert os.listdir("units") == []
    assert main(["-t", "low.tap", "--no-capabilities", "--socket-activation", "-d", "units"]) == 0
    assert sorted(os.listdir("units")) == ["tapster-low-qotd.socket", "tapster-low.service"]


def test_socket_units_name_their_descriptors(capsys) -> None:
    assert main(["-t", "site.tap", "--socket-activation"]) == 0
    out = capsys.readouterr().out
    assert "# ==> tapster-site-qotd.socket <==" in out
    assert "ListenStream=127.0.0.1:8007" in out and "FileDescriptorName=qotd" in out
    assert "systemd:name=qotd" in out and "Requires=tapster-site-qotd.socket" in out


@pytest.mark.parametrize("argv, words", [
    (["-t", "missing.tap"], "no such file: missing.tap"),
    (["-t", "pw"], "pw"),
    (["-t", "site.tap", "--health", "udp:9"], "--health"),
    (["-t", "site.tap", "--drain-time", "soon"], "--drain-time"),
    (["-t", "site.tap", "--user", "Bad User"], "--user"),
    ([], None),
])
def test_bad_input_is_one_line(argv, words, capsys) -> None:
    status = main(argv)
    if words is None:
        assert status == 0 and "Usage: tap2unit" in capsys.readouterr().out
        return
    assert status in (1, 2)
    assert words in one_line(capsys.readouterr().err)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    persist.save(build("qotd", ["-p", "80"], appname="low", uid="qotd"), "low.tap")
    persist.save(build("qotd", ["-p", "8007"], appname="sec"), "sec.etap", passphrase="right")
    prefix = str(Path(sys.executable).parent.parent)
    for i, argv in enumerate([["-t", "site.tap"], ["-t", "low.tap", "--socket-activation", "--watchdog", "30"],
                              ["-t", "sec.etap", "--passphrase-file", "pw", "--health", "tcp:9100", "--stateless"]]):
        out = tmp_path / f"u{i}"
        out.mkdir()
        assert main([*argv, "--prefix", prefix, "-d", str(out)]) == 0
        files = sorted(str(p) for p in out.iterdir())
        done = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True, timeout=30)
        complaints = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode == 0 and complaints == [], complaints


def test_endpoint_services_count_as_ports_and_passed_sockets_do_not() -> None:
    from tapster.core import strports
    from tapster.plugins.qotd import QOTDFactory
    from tapster.plugins.quoters import StaticQuoter

    app = Application("eps")
    strports.service("tcp:8010:interface=127.0.0.1", QOTDFactory(StaticQuoter("x"))).setServiceParent(app)
    strports.service("systemd:name=web", QOTDFactory(StaticQuoter("y"))).setServiceParent(app)
    persist.save(app, "eps.tap")
    d = _deploy.read_deployment("eps.tap")
    assert [(p.kind, p.number, p.interface) for p in d.ports] == [("tcp", 8010, "127.0.0.1")]


def test_udp_ports_become_datagram_sockets_udp_services_and_udp_exposes(capsys) -> None:
    from tapster.core.internet import TCPServer, UDPServer
    from tapster.core.protocol import DatagramProtocol
    from tapster.mktap import tap2k8s
    from tapster.plugins.qotd import QOTDFactory
    from tapster.plugins.quoters import StaticQuoter

    app = Application("dns")
    udp = UDPServer(5353, DatagramProtocol(), interface="127.0.0.1")
    udp.setName("dns")
    udp.setServiceParent(app)
    TCPServer(8053, QOTDFactory(StaticQuoter("x"))).setServiceParent(app)
    UDPServer("systemd:name=passed", DatagramProtocol()).setServiceParent(app)  # systemd's own socket unit
    persist.save(app, "dns.tap")
    d = _deploy.read_deployment("dns.tap")
    assert [(p.kind, p.number, p.protocol) for p in d.ports] == [("udp", 5353, "UDP"), ("tcp", 8053, "TCP")]
    assert [p.kind for p in d.tcp_ports] == ["tcp"]
    Path("units").mkdir()
    assert main(["-t", "dns.tap", "--socket-activation", "-d", "units"]) == 0
    socket_unit = Path("units/tapster-dns-dns.socket").read_text()
    assert "ListenDatagram=127.0.0.1:5353" in socket_unit and "ListenStream" not in socket_unit
    capsys.readouterr()
    assert tap2k8s.main(["-t", "dns.tap"]) == 0
    manifests = capsys.readouterr().out
    assert "protocol: UDP" in manifests and "containerPort: 5353" in manifests and "port: 5353" in manifests
    assert tap2k8s.main_oci(["-t", "dns.tap"]) == 0
    assert "EXPOSE 5353/udp 8053 9100" in capsys.readouterr().out
