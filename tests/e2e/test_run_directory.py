"""Nothing in the run directory can shadow tapster or a plugin, whatever twistd loads.

The run directory is a hostile place: a project checkout with its own
``plugins/`` package, an unpacked tarball, a directory a stranger's file
came in. Each decoy package here, if ever imported, leaves a marker file and
raises, so a test fails both ways: by the marker and by the server not
starting. A ``.tac`` may still import a helper module beside it, as with
Twisted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, free_port, nc, run, wait_for_port

#: Packages a careless sys.path would let the run directory shadow: generic names, tapster's
#: own, and a library twistd imports while loading (PyYAML for a .yaml file).
DECOYS = ("tapster", "core", "plugins", "mktap", "twistd", "yaml")


def plant_decoys(directory: Path, names: tuple[str, ...] = DECOYS) -> Path:
    marker = directory / "DECOY-IMPORTED"
    for name in names:
        package = directory / name
        package.mkdir()
        (package / "__init__.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n"
            f"raise ImportError('the decoy {name} in the run directory was imported')\n"
        )
    return marker


def endpoint(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


@pytest.mark.parametrize("kind, ext", [("pickle", "tap"), ("xml", "tax"), ("source", "tas"), ("yaml", "yaml")])
def test_a_saved_file_runs_from_a_directory_full_of_decoys(kind: str, ext: str, tmp_path: Path, twistd) -> None:
    port = free_port()
    marker = plant_decoys(tmp_path)
    made = run("mktap", "-t", kind, "qotd", "--port", endpoint(port), "--static", "not shadowed", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-o", "--pidfile", "", "-f", f"qotd.{ext}", cwd=tmp_path)
    wait_for_port(port, server.proc)
    assert nc(port) == b"not shadowed\r\n"
    assert server.stop() == 0, server.stderr
    assert not marker.exists(), marker.read_text()


def write_tac(directory: Path, name: str, neighbour: str, quote: str, port: int) -> None:
    """``name``.tac serving qotd on ``port`` with the quote from the module ``neighbour`` beside it."""
    (directory / f"{neighbour}.py").write_text(f"QUOTE = {quote!r}\n")
    (directory / f"{name}.tac").write_text(
        f"import {neighbour}\n"
        "from tapster.core.service import Application\n"
        "from tapster.plugins.qotd import makeService, Options\n"
        "options = Options()\n"
        f"options.parseOptions(['--port', {endpoint(port)!r}, '--static', {neighbour}.QUOTE])\n"
        f"application = Application({name!r})\n"
        "makeService(options).setServiceParent(application)\n"
    )


@pytest.mark.parametrize("where", [".", "site"])
def test_a_tac_imports_its_neighbour_but_no_decoy(tmp_path: Path, twistd, where: str) -> None:
    """Beside the .tac, whether that is the run directory or another one; never a decoy of the run directory."""
    port = free_port()
    marker = plant_decoys(tmp_path)
    directory = tmp_path / where
    directory.mkdir(exist_ok=True)
    write_tac(directory, "app", "house_quote", f"from the module beside the tac in {where}", port)
    server = twistd("-n", "--pidfile", "", "-y", f"{where}/app.tac", cwd=tmp_path)
    wait_for_port(port, server.proc)
    assert nc(port) == f"from the module beside the tac in {where}\r\n".encode()
    assert server.stop() == 0, server.stderr
    assert not marker.exists(), marker.read_text()


def test_mktap_ignores_decoys_too(tmp_path: Path) -> None:
    marker = plant_decoys(tmp_path)
    made = run("mktap", "-t", "yaml", "qotd", "--port", endpoint(free_port()), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "plugin: qotd" in (tmp_path / "qotd.yaml").read_text()
    assert not marker.exists(), marker.read_text()


def test_python_dash_m_drops_the_run_directory_before_loading(tmp_path: Path, servers: list) -> None:
    """``python -m`` puts the run directory first; tapster takes it off before importing anything else.

    (A decoy named ``tapster`` itself cannot be kept out this way: Python imports it
    before tapster's code runs. ``-P``, or the console scripts, avoid even that.)
    """
    port = free_port()
    marker = plant_decoys(tmp_path, ("core", "plugins", "yaml"))
    made = run("mktap", "-t", "yaml", "qotd", "--port", endpoint(port), "--static", "via -m", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    proc = subprocess.Popen([sys.executable, "-m", "tapster.twistd", "-n", "-o", "--pidfile", "", "-f", "qotd.yaml"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        assert nc(port) == b"via -m\r\n"
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert not marker.exists(), marker.read_text()
