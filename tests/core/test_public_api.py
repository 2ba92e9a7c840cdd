"""Public calls added so that no module needs another package's private names."""

from __future__ import annotations

import io
import os
import pickle
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tapster.core import endpoints, persist, usage
from tapster.core.errors import CannotListenError, PersistError
from tapster.core.service import Application
from tapster.core.terminal import ExitStatus, exit_status_help


class Demo(usage.Options):
    optFlags = [["verbose", "v", "Say more."]]
    optParameters = [["port", "p", "8007", "Where."], ["portal", None, None, "Another."]]

    def opt_fortune(self, path: str) -> None:
        """A file of quotes."""


# -- the option table ------------------------------------------------------------


def test_option_specs_in_help_order() -> None:
    names = [spec.name for spec in Demo().optionSpecs()]
    assert names[:3] == ["verbose", "port", "portal"] and "fortune" in names
    spec = Demo().findOption("-p")
    assert isinstance(spec, usage.OptionSpec) and spec.long == "port" and spec.takesArg and spec.kind == "param"
    assert Demo().findOption("verbose").kind == "flag"  # type: ignore[union-attr]
    assert Demo().findOption("nope") is None


def test_lookup_option_by_unique_prefix_or_a_helpful_error() -> None:
    assert Demo().lookupOption("verb").long == "verbose"
    with pytest.raises(usage.UsageError, match="ambiguous: it could be --port, --portal"):
        Demo().lookupOption("po")
    with pytest.raises(usage.UsageError, match="did you mean --fortune"):
        Demo().lookupOption("fortun3")


def test_scan_arguments_is_the_parsers_own_scan() -> None:
    found, rest = Demo().scanArguments(["-v", "--port=9", "--fortune", "f.txt", "arg", "--verbose"])
    assert [(spec.name, value, spelled) for spec, value, spelled in found] == [
        ("verbose", None, "-v"), ("port", "9", "--port"), ("fortune", "f.txt", "--fortune")]
    assert rest == ["arg", "--verbose"]


# -- a listening socket for servers that are not Protocols --------------------------


def test_listening_socket_tcp_is_bound_listening_and_non_blocking() -> None:
    sock = endpoints.listeningSocket("tcp:0:interface=127.0.0.1")
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0 and not sock.getblocking()
        with socket.create_connection((host, port), timeout=5):
            pass  # accepted into the backlog: it listens
    finally:
        sock.close()


def test_listening_socket_unix_with_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    sock = endpoints.listeningSocket(f"unix:{path}:mode=600")
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        sock.close()


def test_listening_socket_in_use_names_the_address() -> None:
    first = endpoints.listeningSocket("tcp:0:interface=127.0.0.1")
    try:
        port = first.getsockname()[1]
        with pytest.raises(CannotListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            endpoints.listeningSocket(f"tcp:{port}:interface=127.0.0.1")
    finally:
        first.close()


def test_listening_socket_refuses_ssl() -> None:
    with pytest.raises(endpoints.EndpointError, match="use tcp, tcp6 or unix"):
        endpoints.listeningSocket("ssl:0:privateKey=k.pem")


# -- exit statuses ---------------------------------------------------------------------


def test_exit_status_help_renders_continuation_lines() -> None:
    text = exit_status_help({ExitStatus.OK: "fine", ExitStatus.ERROR: "broken\nreally"})
    assert text == "Exit status:\n  0  fine\n  1  broken\n     really"


@pytest.mark.parametrize(
    "command, meanings",
    [
        ("mktap", "tapster.mktap.options"),
        ("tapconvert", "tapster.mktap.tapconvert"),
        ("twistd", "tapster.twistd.options"),
    ],
)
def test_each_command_documents_the_statuses_it_uses(command: str, meanings: str) -> None:
    import importlib

    table = importlib.import_module(meanings).EXIT_MEANINGS
    out = subprocess.run([str(Path(sys.executable).parent / command), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert exit_status_help(table) in out
    assert set(table) <= {v for k, v in vars(ExitStatus).items() if k.isupper()}


# -- format versions -------------------------------------------------------------------


def test_a_pickle_without_the_version_header_is_version_zero(tmp_path: Path) -> None:
    path = tmp_path / "old.tap"
    path.write_bytes(pickle.dumps(Application("plain"), protocol=4))
    assert persist.load(str(path)).name == "plain"


def test_a_pickle_from_a_newer_tapster_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "new.tap"
    path.write_bytes(pickle.dumps(("tapster-application", 99), protocol=4) + pickle.dumps(Application("x")))
    with pytest.raises(PersistError, match="written in pickle format 99; this tapster reads formats up to 1"):
        persist.load(str(path))


def test_the_pickle_header_names_no_class(tmp_path: Path) -> None:
    """The header is read before anything else with an unpickler that can name nothing."""
    data = persist.dumps(Application("x"), "pickle")
    stream = io.BytesIO(data)
    assert pickle.load(stream) == ("tapster-application", 1)
    assert b"tapster.core" not in data[: stream.tell()]


def test_a_source_file_from_a_newer_tapster_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "new.tas"
    path.write_text("# tapster application source, format 7\napplication = None\n")
    with pytest.raises(PersistError, match="written in source format 7; this tapster reads format 1"):
        persist.load(str(path))
