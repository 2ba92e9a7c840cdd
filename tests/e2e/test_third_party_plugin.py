"""A third-party plugin, pip-installed: examples/hello in a throwaway virtual environment.

SLOW-ISH (about 5-10 s; needs pip, and PyPI or a pip cache for setuptools
unless the running environment can build wheels offline). It is what a plugin
author does: ``pip install`` tapster and the plugin package side by side into
a fresh venv, then ``mktap --help`` lists the plugin, ``mktap hello ...``
builds it and ``twistd -n -f hello.tap`` serves it to a real client; the same
in the XML format (``mktap -t xml hello``, ``twistd -f hello.tax``), which
loads only classes that the plugin declares in its ``safeNames``. The
plugin's own tests (``examples/hello/tests``) run there too, as
docs/plugins.md tells authors to.

The venv is created without pip and without dependencies: pip (of the
running interpreter, ``pip --python``) installs tapster and tapster-hello
into it with ``--no-deps``, and a ``.pth`` file lends it the running
environment's site-packages for tapster's dependencies (pluggy, PyYAML,
rich, cryptography, uvloop), so nothing but the build backend may need the
network. The venv's own site-packages comes first on ``sys.path``, so the
``tapster.core``/``tapster.mktap`` it runs are the freshly installed copies.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, free_port, nc, wait_for_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"
PIP_TIMEOUT = 120


def _can_build_offline() -> bool:
    """setuptools that builds wheels without the ``wheel`` package (>= 70.1), or with it."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    return version >= (70, 1) or (version >= (64,) and importlib.util.find_spec("wheel") is not None)


def _copy_tree(src: Path, dst: Path) -> Path:
    """A clean copy to build from: pip builds in place, and must not litter the repository."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv"))
    return dst


def venv_with_tapster(root: Path, projects: list[Path], what: str) -> Path:
    """A throwaway venv under ``root`` with this repository's tapster and ``projects`` pip-installed.

    The test environment's own site-packages are put on the venv's path (a
    ``.pth``), so nothing is downloaded; tapster is built from a clean copy.
    """
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=60)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_tapster_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))

    source = root / "src" / "tapster"
    for name in ("core", "mktap", "twistd", "plugins"):
        _copy_tree(REPO / name, source / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)

    argv = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
            "--disable-pip-version-check"]
    if _can_build_offline():
        argv += ["--no-build-isolation", "--no-index"]
    done = subprocess.run([*argv, str(source), *map(str, projects)], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"pip could not install tapster and {what} into a venv:\n{done.stderr[-3000:]}")
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("third_party")
    hello = _copy_tree(EXAMPLE, root / "src" / "hello")
    return venv_with_tapster(root, [hello], "examples/hello")


def run(env: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(env / "bin" / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"})


def test_installed_plugin_is_listed_built_and_served(venv: Path, tmp_path: Path) -> None:
    listing = run(venv, "mktap", "--help", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if line.startswith("  ") and line.split()}
    assert "Greets whoever connects by name" in rows["hello"]
    assert "qotd" in rows and "echo" in rows

    where = run(venv, "python", "-c",
                "import tapster.core, tapster_hello; print(tapster.core.__file__, tapster_hello.__file__)",
                cwd=tmp_path)
    assert where.stdout.count(str(venv)) == 2, where.stdout  # both imported from the throwaway venv

    port = free_port()
    made = run(venv, "mktap", "hello", "--port", f"tcp:{port}:interface=127.0.0.1", "--name", "plugin author",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    bad = run(venv, "mktap", "hello", "--name", " ", cwd=tmp_path)
    assert bad.returncode == 2 and "--name" in bad.stderr and "Traceback" not in bad.stderr

    server = subprocess.Popen([str(venv / "bin" / "twistd"), "-n", "-o", "-f", "hello.tap"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, server)
        assert nc(port) == b"Hello, plugin author!\r\n"
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=DEADLINE)
    assert server.returncode == 0, err


def test_installed_plugin_round_trips_through_xml(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    made = run(venv, "mktap", "-t", "xml", "hello", "--port", f"tcp:{port}:interface=127.0.0.1", "--name", "XML",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    saved = (tmp_path / "hello.tax").read_text()
    assert 'module="tapster_hello.plugin" class="GreeterFactory"' in saved

    server = subprocess.Popen([str(venv / "bin" / "twistd"), "-n", "-o", "-f", "hello.tax"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, server)
        assert nc(port) == b"Hello, XML!\r\n"
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=DEADLINE)
    assert server.returncode == 0, err


def test_the_example_plugins_own_tests_pass_there(venv: Path, tmp_path: Path) -> None:
    tests = _copy_tree(EXAMPLE / "tests", tmp_path / "tests")
    done = run(venv, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout
