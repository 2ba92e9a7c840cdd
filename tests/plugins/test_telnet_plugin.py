"""The telnet plugin: its options, the service it builds, and what of it is saved (never the password)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tapster.core import persist, usage
from tapster.core.internet import TCPServer, UNIXServer
from tapster.core.plugin import build_application as build
from tapster.core.service import Application
from tapster.plugins import telnet
from tapster.plugins._console.auth import check_password
from tapster.plugins._console.options import duration, listen_description, scrub_recipe
from tapster.plugins._console.service import TelnetService, rootOf

PASSWORD = "open sesame"


@pytest.fixture(scope="module")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("pw") / "admin.pw"
    path.write_text(PASSWORD + "\nsecond line ignored\n")
    return str(path)


def parse(*argv: str) -> telnet.Options:
    config = telnet.Options()
    config.parseOptions(list(argv))
    return config


def test_no_password_is_refused_with_a_clear_message() -> None:
    with pytest.raises(usage.UsageError, match="no default password"):
        parse()


def test_password_file_is_hashed_and_the_clear_text_dropped(password_file: str) -> None:
    config = parse("--password-file", password_file)
    assert check_password(config["password-hash"], PASSWORD)
    assert config["password"] is None


def test_password_on_the_command_line_works_too() -> None:
    config = parse("-w", PASSWORD, "-u", "root")
    assert check_password(config["password-hash"], PASSWORD)
    assert config["username"] == "root"


@pytest.mark.parametrize("content, message", [(None, "No such file"), ("", "empty"), ("\nx\n", "empty")])
def test_unusable_password_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    with pytest.raises(usage.UsageError, match=message):
        parse("--password-file", str(path))


def test_two_password_sources_are_refused(password_file: str) -> None:
    with pytest.raises(usage.UsageError, match="not --password and --password-file"):
        parse("-w", "x", "--password-file", password_file)


def test_a_saved_hash_can_be_given_back(password_file: str) -> None:
    stored = parse("--password-file", password_file)["password-hash"]
    assert parse("--password-hash", stored)["password-hash"] == stored
    with pytest.raises(usage.UsageError, match="password-hash"):
        parse("--password-hash", "plaintext")


def test_defaults_keep_the_console_on_loopback() -> None:
    config = parse("-w", "x")
    assert config["endpoint"] == "tcp:4040:interface=127.0.0.1"
    assert config["username"] == "admin"
    assert config["idle-timeout"] == 900.0
    assert config["max-sessions"] == 5


@pytest.mark.parametrize("port, interface, expected", [
    ("4041", "127.0.0.1", "tcp:4041:interface=127.0.0.1"),
    ("tcp:4041", "127.0.0.1", "tcp:4041:interface=127.0.0.1"),
    ("tcp:4041:interface=0.0.0.0", "127.0.0.1", "tcp:4041:interface=0.0.0.0"),
    ("4041", "::1", "tcp:4041:interface=\\:\\:1"),
    ("4041", "", "tcp:4041"),
    ("tcp:4041:backlog=5", "127.0.0.1", "tcp:4041:interface=127.0.0.1:backlog=5"),
    ("unix:/tmp/console.sock", "127.0.0.1", "unix:/tmp/console.sock"),
])
def test_listen_description(port: str, interface: str, expected: str) -> None:
    assert listen_description(port, interface) == expected


@pytest.mark.parametrize("value, seconds", [("900", 900), ("90s", 90), ("15m", 900), ("1h", 3600), ("0", 0),
                                            ("1.5m", 90), (30, 30)])
def test_durations(value, seconds: float) -> None:
    assert duration(value) == seconds


@pytest.mark.parametrize("option", [["--idle-timeout", "soon"], ["--idle-timeout", "-5"], ["--max-sessions", "0"],
                                    ["--username", " "], ["--port", "nonsense:1"]])
def test_bad_values_are_usage_errors(option: list[str]) -> None:
    with pytest.raises(usage.UsageError):
        parse("-w", "x", *option)


def test_make_service_listens_through_an_ordinary_server(password_file: str) -> None:
    service = telnet.makeService(parse("--password-file", password_file, "-p", "4999", "--max-sessions", "2"))
    assert isinstance(service, TelnetService)
    (child,) = list(service)
    assert isinstance(child, TCPServer)
    assert child.args[0] == 4999 and child.kwargs["interface"] == "127.0.0.1"
    assert child.args[1] is service.factory
    assert service.console.maxSessions == 2


def test_unix_endpoint(password_file: str, tmp_path: Path) -> None:
    service = telnet.makeService(parse("--password-file", password_file, "-p", f"unix:{tmp_path}/c.sock"))
    assert isinstance(next(iter(service)), UNIXServer)


def test_usage_text_warns_about_clear_text() -> None:
    text = str(telnet.Options())
    assert "clear text" in text and "loopback" in text and "manhole" in text


def test_plugin_modules_stay_light() -> None:
    code = (
        "import sys, tapster.plugins.telnet, tapster.plugins.manhole; "
        "print(sorted(m for m in ('asyncio', 'asyncssh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- what is saved ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(password_file: str) -> Application:
    return build("telnet", ["--password-file", password_file, "-p", "4998"], appname="site")


@pytest.mark.parametrize("kind", ["pickle", "xml", "source", "yaml"])
def test_every_format_saves_the_hash_never_the_password(built: Application, kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"site.{persist.format_for(kind).extension}"
    persist.save(built, str(path), kind)
    data = path.read_bytes()
    assert PASSWORD.encode() not in data
    assert b"admin.pw" not in data  # the recipe keeps the hash, not the file name
    loaded = persist.load(str(path))
    service = loaded.getServiceNamed("telnet")
    assert check_password(service.console.passwordHash, PASSWORD)
    assert service.console.sessions == []
    assert service.endpoint == "tcp:4998:interface=127.0.0.1"


def test_saving_a_running_console_drops_its_sessions_and_namespace(built: Application) -> None:
    import pickle

    service = built.getServiceNamed("telnet")
    console = service.console
    console.start(built, "telnet")
    console.namespace()["thing"] = object()  # not picklable, and not saved
    console.sessions.append(object())
    try:
        clone = pickle.loads(pickle.dumps(built))
    finally:
        console.sessions.clear()
        console.runtime.namespace = None
    assert "_runtime" not in vars(clone.getServiceNamed("telnet").console)
    assert clone.getServiceNamed("telnet").console.sessions == []


def test_recipe_replaces_password_options_with_the_hash() -> None:
    recipe = {"plugin": "telnet", "options": {"port": "4040", "password": "x", "password-file": "f"}}
    assert scrub_recipe(recipe, "scrypt$h") == {"plugin": "telnet", "options": {"port": "4040",
                                                                                "password-hash": "scrypt$h"}}
    assert recipe["options"]["password"] == "x"  # the caller's dict is left alone
    assert scrub_recipe(None, "h") is None


# -- starting ---------------------------------------------------------------------------


def test_start_finds_the_root_and_publishes_it_on_main(password_file: str, shared_reactor,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import __main__
    from tapster.core.service import MultiService

    monkeypatch.delattr(__main__, "application", raising=False)
    app = Application("root-app")
    middle = MultiService()
    middle.setServiceParent(app)
    service = telnet.makeService(parse("--password-file", password_file, "-p", "tcp:0:interface=127.0.0.1"))
    service.setName("telnet")
    service.setServiceParent(middle)
    assert rootOf(service) is app
    app.privilegedStartService()
    app.startService()
    try:
        assert __main__.application is app
        assert service.console.namespace()["application"] is app
        host = next(iter(service)).getHost()
        assert host.host == "127.0.0.1" and host.port > 0
    finally:
        result = app.stopService()
        if result is not None:
            shared_reactor.loop.run_until_complete(result)
