"""mktap complete, end to end: every format built, appended to and served; encryption; YAML recipes; tapconvert.

The real ``mktap``, ``tapconvert`` and ``twistd -n`` run as subprocesses; a
real client (``nc``) checks the answers.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from tapster.core.plugin import format_specs
from tests.e2e._e2e import assert_one_clean_line, command, free_port, nc, run, wait_for_port

README = Path(__file__).resolve().parents[2] / "README.md"
EXTENSIONS = {"pickle": "tap", "xml": "tax", "source": "tas", "yaml": "yaml"}


def endpoint(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


def installed(kind: str) -> str:
    if kind not in format_specs():
        pytest.skip(f"the {kind} format is not installed yet")
    return kind


def twistd_reads_passphrases() -> bool:
    done = subprocess.run([command("twistd"), "--help"], capture_output=True, text=True, timeout=30)
    return "--passphrase-file" in done.stdout


@pytest.mark.parametrize("kind", ["pickle", "xml", "source", "yaml"])
def test_build_run_then_append_serves_both(kind: str, tmp_path: Path, twistd) -> None:
    installed(kind)
    ext = EXTENSIONS[kind]
    qotd_port, echo_port = free_port(), free_port()
    made = run("mktap", "-t", kind, "-n", "site", "qotd", "-p", endpoint(qotd_port), "-s", "Hello, formats",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"wrote site.{ext} ({kind})" in made.stderr

    server = twistd("-n", "-o", "-f", f"site.{ext}")
    wait_for_port(qotd_port, server.proc)
    assert nc(qotd_port) == b"Hello, formats\r\n"
    assert server.stop() == 0, server.stderr

    added = run("mktap", "--append", f"site.{ext}", "echo", "--port", endpoint(echo_port), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"site.{ext}"]

    both = twistd("-n", "-f", f"site.{ext}")
    wait_for_port(qotd_port, both.proc)
    wait_for_port(echo_port, both.proc)
    assert nc(qotd_port) == b"Hello, formats\r\n"
    assert nc(echo_port, b"ping\n") == b"ping\n"
    assert both.stop() == 0, both.stderr
    assert (tmp_path / f"site-shutdown.{ext}").is_file()  # written back in its own format


def test_readme_yaml_example_serves_qotd_and_echo(tmp_path: Path, twistd) -> None:
    match = re.search(r"<!-- yaml-example -->\s*```yaml\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md lost its YAML example (marked <!-- yaml-example -->)"
    qotd_port, echo_port = free_port(), free_port()
    text = match.group(1).replace("8007", str(qotd_port)).replace("8008", str(echo_port))
    (tmp_path / "site.yaml").write_text(text)

    server = twistd("-n", "-o", "-f", "site.yaml")
    wait_for_port(qotd_port, server.proc)
    wait_for_port(echo_port, server.proc)
    assert nc(qotd_port).startswith(b"Hello from a recipe")
    assert nc(echo_port, b"echo me\n") == b"echo me\n"
    assert server.stop() == 0, server.stderr


def test_hostile_yaml_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(
        f"name: evil\nservices:\n  - plugin: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    r = run("twistd", "-n", "-o", "-f", "evil.yaml", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1
    assert "refused the YAML tag !!python/object/apply:os.system" in r.stderr
    assert not marker.exists()


def test_yaml_with_a_bad_option_names_service_and_option(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("services:\n  - plugin: qotd\n    name: quotes\n    options: {prot: 8007}\n")
    r = run("twistd", "-n", "-o", "-f", "typo.yaml", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "service 'quotes' (plugin qotd): option --prot not recognized (did you mean --port?)" in r.stderr


def test_encrypted_build_is_ciphertext_and_wrong_passphrase_leaves_it(tmp_path: Path, twistd) -> None:
    (tmp_path / "pw").write_text("correct horse\n")
    (tmp_path / "bad").write_text("wrong horse\n")
    port = free_port()
    made = run("mktap", "-e", "--passphrase-file", "pw", "qotd", "-p", endpoint(port), "-s", "TopSecretQuote",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    path = tmp_path / "qotd.etap"
    data = path.read_bytes()
    assert data.startswith(b"TAPSTER-ENCRYPTED v1 format=pickle scrypt ")
    for plain in (b"TopSecretQuote", b"QOTDFactory", b"tapster.plugins.qotd", b"tapster.core.internet"):
        assert plain not in data

    wrong = run("mktap", "--append", "qotd.etap", "--passphrase-file", "bad", "echo", cwd=tmp_path)
    assert_one_clean_line(wrong)
    assert wrong.returncode == 1 and "wrong passphrase for qotd.etap" in wrong.stderr
    assert path.read_bytes() == data

    if twistd_reads_passphrases():
        refused = run("twistd", "-n", "-o", "--passphrase-file", "bad", "-f", "qotd.etap", cwd=tmp_path)
        assert_one_clean_line(refused)
        assert refused.returncode == 1 and "wrong passphrase" in refused.stderr
        assert path.read_bytes() == data
        server = twistd("-n", "--passphrase-file", "pw", "-f", "qotd.etap")
        wait_for_port(port, server.proc)
        assert nc(port) == b"TopSecretQuote\r\n"
        assert server.stop() == 0, server.stderr
        assert (tmp_path / "qotd-shutdown.etap").read_bytes().startswith(b"TAPSTER-ENCRYPTED v1")

    # decrypted with tapconvert, the same application runs
    converted = run("tapconvert", "-i", "qotd.etap", "-o", "plain.tap", "-d", "--passphrase-file", "pw", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    server = twistd("-n", "-o", "-f", "plain.tap")
    wait_for_port(port, server.proc)
    assert nc(port) == b"TopSecretQuote\r\n"
    assert server.stop(signal.SIGINT) == 0, server.stderr


def test_tapconvert_round_trip_through_encrypted_yaml(tmp_path: Path, twistd) -> None:
    (tmp_path / "pw").write_text("pw\n")
    qotd_port, echo_port = free_port(), free_port()
    assert (
        run("mktap", "-n", "site", "qotd", "-p", endpoint(qotd_port), "-s", "Converted", cwd=tmp_path).returncode == 0
    )
    assert run("mktap", "-a", "site.tap", "echo", "-p", endpoint(echo_port), cwd=tmp_path).returncode == 0
    steps = [
        ["-i", "site.tap", "-o", "site.eyaml", "-e", "--passphrase-file", "pw"],
        ["-i", "site.eyaml", "-o", "site.yaml", "-d", "--passphrase-file", "pw"],
    ]
    for argv in steps:
        done = run("tapconvert", *argv, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert "plugin: echo" in (tmp_path / "site.yaml").read_text()
    server = twistd("-n", "-o", "-f", "site.yaml")
    wait_for_port(qotd_port, server.proc)
    wait_for_port(echo_port, server.proc)
    assert nc(qotd_port) == b"Converted\r\n"
    assert server.stop() == 0, server.stderr


def test_mktap_errors_are_one_line(tmp_path: Path) -> None:
    for argv, status in (
        (["-t", "json", "qotd"], 2),
        (["-x", "-s", "qotd"], 2),
        (["--passphrase-file", "missing", "qotd"], 1),
        (["-a", "nothere.yaml", "qotd", "--prot", "1"], 2),
    ):
        r = run("mktap", *argv, cwd=tmp_path)
        assert_one_clean_line(r)
        assert r.returncode == status, (argv, r)
    assert list(tmp_path.iterdir()) == []
