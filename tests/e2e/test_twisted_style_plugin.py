"""A Twisted plugin ported by changing imports, pip-installed into a throwaway venv and served.

SLOW-ISH (one pip install, as tests/e2e/test_third_party_plugin.py does). The
distribution is written here, in the shapes Twisted users have: a plugin file
with an ``@implementer(IServiceMaker, IPlugin)`` class and a module-level
instance (``myproj/plugins/myproj_plugin.py``, Twisted's
``twisted/plugins/myproj_plugin.py`` with its imports changed), a
``ServiceMaker(name, module, description, tapname)`` naming the module that
holds ``Options`` and ``makeService``, and a 2002 tap module with
``usage_message`` and ``getPorts``. Each entry point is then run the way a user
runs it: ``mktap NAME``, ``twistd -n -o -f NAME.tap``, ``twistd -n NAME``,
and talked to with ``nc``.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, free_port, nc, wait_for_port
from tests.e2e.test_third_party_plugin import run, venv_with_tapster

FILES = {
    "pyproject.toml": '''
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "myproj-ported"
        version = "0.1"
        requires-python = ">=3.11"

        [project.entry-points."mktap.plugins"]
        myproj = "myproj.plugins.myproj_plugin:serviceMaker"
        lazyproj = "myproj.plugins.lazy_plugin:lazyMaker"
        oldtap = "myproj.oldtap"

        [tool.setuptools]
        packages = ["myproj", "myproj.plugins"]
    ''',
    "myproj/__init__.py": "",
    "myproj/plugins/__init__.py": "",
    "myproj/shout.py": '''
        from tapster.core import usage
        from tapster.core.basic import LineReceiver
        from tapster.core.protocol import Factory


        class Options(usage.Options):
            optParameters = [
                ["port", "p", "8000", "Endpoint to listen on."],
                ["prefix", None, ">", "Put before each answer."],
            ]


        class Shout(LineReceiver):
            delimiter = b"\\n"

            def lineReceived(self, line):
                self.sendLine(self.factory.prefix + line.upper())
                self.transport.loseConnection()


        class ShoutFactory(Factory):
            protocol = Shout

            def __init__(self, prefix):
                self.prefix = prefix.encode()


        def makeService(options):
            from tapster.core import endpoints

            return endpoints.service(options["port"], ShoutFactory(options["prefix"]))
    ''',
    "myproj/plugins/lazy_plugin.py": '''
        from tapster.core.plugin import ServiceMaker

        lazyMaker = ServiceMaker("Lazy shouter", "myproj.shout", "Shouts back, from a ServiceMaker.", "lazyproj")
    ''',
    "myproj/oldtap.py": '''
        from tapster.core import usage
        from tapster.core.protocol import Factory, Protocol

        usage_message = """Greets the 2002 way, from getPorts.

        The port is a number or an endpoint description.
        """


        class Options(usage.Options):
            optParameters = [["port", "p", "8007", "Port to listen on."]]


        class Hello(Protocol):
            def connectionMade(self):
                self.transport.write(b"hello from 2002\\r\\n")
                self.transport.loseConnection()


        def getPorts(app, config):
            factory = Factory()
            factory.protocol = Hello
            return [(config["port"], factory)]
    ''',
}

# Twisted's twisted/plugins/myproj_plugin.py, with its imports changed
PLUGIN_FILE = '''
    from tapster.core import usage
    from tapster.core.plugin import IPlugin, IServiceMaker
    from tapster.core.service import implementer


    class Options(usage.Options):
        optParameters = [
            ["port", "p", "8000", "Endpoint to listen on."],
            ["prefix", None, "!", "Put before each answer."],
        ]


    @implementer(IServiceMaker, IPlugin)
    class MyServiceMaker:
        tapname = "myproj"
        description = "Shouts back whatever line it is sent."
        options = Options

        def makeService(self, options):
            from tapster.core import endpoints

            from myproj import shout

            return endpoints.service(options["port"], shout.ShoutFactory(options["prefix"]))


    serviceMaker = MyServiceMaker()
'''


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("twisted_style")
    project = root / "src" / "myproj"
    files = {**FILES, "myproj/plugins/myproj_plugin.py": PLUGIN_FILE}
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return venv_with_tapster(root, [project], "the ported plugin")


def served(venv: Path, cwd: Path, port: int, argv: list[str], data: bytes | None) -> bytes:
    """Run twistd with ``argv`` until ``port`` answers, talk to it once with nc, stop it cleanly."""
    server = subprocess.Popen([str(venv / "bin" / "twistd"), *argv], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, server)
        answer = nc(port, data)
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=DEADLINE)
    assert server.returncode == 0, err
    return answer


def test_mktap_help_lists_every_shape_without_importing_a_servicemakers_module(venv: Path, tmp_path: Path) -> None:
    listing = run(venv, "mktap", "--help", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert "Shouts back whatever line it is sent." in rows["myproj"]
    assert "Shouts back, from a ServiceMaker." in rows["lazyproj"]
    assert "Greets the 2002 way, from getPorts." in rows["oldtap"]
    assert "BROKEN" not in listing.stdout

    probe = run(venv, "python", "-c",
                "import sys; from tapster.core.plugin import plugin_rows; plugin_rows(); "
                "print('myproj.shout' in sys.modules, 'myproj.plugins.lazy_plugin' in sys.modules)", cwd=tmp_path)
    assert probe.stdout.split() == ["False", "True"], probe.stdout + probe.stderr


def test_a_ported_iservicemaker_plugin_runs_under_mktap_and_twistd(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    made = run(venv, "mktap", "myproj", "--port", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "myproj.tap").exists()
    assert served(venv, tmp_path, port, ["-n", "-o", "-f", "myproj.tap"], b"hi there\n") == b"!HI THERE\n"

    port = free_port()
    argv = ["-n", "myproj", "--port", f"tcp:{port}:interface=127.0.0.1", "--prefix", "#"]
    assert served(venv, tmp_path, port, argv, b"again\n") == b"#AGAIN\n"

    bad = run(venv, "mktap", "myproj", "--no-such-option", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr


def test_a_servicemaker_plugin_runs_under_mktap_and_twistd(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    made = run(venv, "mktap", "lazyproj", "--port", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert served(venv, tmp_path, port, ["-n", "-o", "-f", "lazyproj.tap"], b"lazy\n") == b">LAZY\n"

    port = free_port()
    argv = ["-n", "lazyproj", "--port", f"tcp:{port}:interface=127.0.0.1"]
    assert served(venv, tmp_path, port, argv, b"direct\n") == b">DIRECT\n"


def test_a_2002_tap_module_shows_its_usage_message_and_serves_its_ports(venv: Path, tmp_path: Path) -> None:
    helped = run(venv, "mktap", "oldtap", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "The port is a number or an endpoint description." in helped.stdout

    port = free_port()
    made = run(venv, "mktap", "oldtap", "--port", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert served(venv, tmp_path, port, ["-n", "-o", "-f", "oldtap.tap"], None) == b"hello from 2002\r\n"

    port = free_port()
    assert served(venv, tmp_path, port, ["-n", "oldtap", "--port", str(port)], None) == b"hello from 2002\r\n"
