"""tap2k8s and tap2oci in-process: manifests and Containerfile agree with the application's ports and health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tapster.core import persist
from tapster.core._persist import crypto as _crypto
from tapster.core.plugin import build_application as build
from tapster.mktap.tap2k8s import main, main_oci


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_crypto, "SCRYPT_N", 2**10)
    Path("pw").write_text("right\n")
    persist.save(build("qotd", ["-p", "8007"], appname="site"), "site.yaml", "yaml")


def docs(capsys) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(capsys.readouterr().out):
        out.setdefault(doc["kind"], []).append(doc)
    return out


def test_manifests_probe_health_and_expose_each_port(capsys) -> None:
    assert main(["-t", "site.yaml", "--replicas", "3", "--drain-time", "5", "--health", "tcp:9100"]) == 0
    d = docs(capsys)
    (deployment,) = d["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 9100, "protocol": "TCP"} in c["ports"]
    assert c["args"][:8] == ["twistd", "-n", "--pidfile=", "-o", "--log-format", "json", "--health", "tcp:9100"]
    assert c["args"][-2:] == ["-f", "/etc/site/site.yaml"] and "--drain-time" in c["args"]
    assert pod["terminationGracePeriodSeconds"] > 5 + 10
    assert c["resources"]["requests"]["memory"] == "128Mi"
    assert [s["spec"]["ports"][0]["port"] for s in d["Service"]] == [8007]
    assert "plugin: qotd" in d["ConfigMap"][0]["data"]["site.yaml"]
    assert d["PodDisruptionBudget"][0]["spec"]["maxUnavailable"] == 1
    assert "Secret" not in d


def test_encrypted_pickle_gets_a_secret_and_binary_config_map(capsys) -> None:
    persist.save(build("qotd", ["-p", "8007"], appname="sec"), "sec.etap", passphrase="right")
    assert main(["-t", "sec.etap", "--passphrase-file", "pw"]) == 0
    d = docs(capsys)
    c = d["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert "--passphrase-file" in c["args"] and "/run/secrets/sec/passphrase" in c["args"]
    assert d["Secret"][0]["metadata"]["name"] == "sec-passphrase" and "sec.etap" in str(d["ConfigMap"][0])
    assert "PodDisruptionBudget" not in d


def test_low_port_is_refused_unless_allowed(capsys) -> None:
    persist.save(build("qotd", ["-p", "80"], appname="low"), "low.tap")
    assert main(["-t", "low.tap"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "port 80 (below 1024)" in err
    assert main(["-t", "low.tap", "--allow-low-ports"]) == 0
    pod = docs(capsys)["Deployment"][0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]


def test_containerfile(capsys) -> None:
    assert main_oci(["-t", "site.yaml", "-o", "Containerfile"]) == 0
    text = Path("Containerfile").read_text()
    assert text.count("\nFROM python:3.") == 1 and "-slim" in text
    assert "USER 10001:10001" in text and "STOPSIGNAL SIGTERM" in text and "EXPOSE 8007 9100" in text
    assert "HEALTHCHECK" in text and "127.0.0.1:9100/healthz" in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd[4:])[:2] == ["twistd", "-n"]  # exec form: no shell needed


def test_bad_input_one_line(capsys) -> None:
    assert main(["-t", "missing.yaml"]) == 1
    assert main(["-t", "site.yaml", "--replicas", "zero"]) == 2
    assert main(["-t", "site.yaml", "--health", "unix:/x"]) == 2
    assert all("Traceback" not in line for line in capsys.readouterr().err.splitlines())
