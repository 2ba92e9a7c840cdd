"""twistd's options: values checked at parse time, defaults, and combinations that make no sense."""

from __future__ import annotations

import pytest

from tapster.core import usage
from tapster.twistd.options import ServerOptions, parse_size, parse_umask


def parse(*argv: str) -> ServerOptions:
    config = ServerOptions()
    config.parseOptions(list(argv))
    return config


@pytest.mark.parametrize("text, size", [
    ("1024", 1024), ("10K", 10 * 1024), ("10M", 10 * 1024**2), ("1G", 1024**3), ("1.5M", int(1.5 * 1024**2)),
    ("10m", 10 * 1024**2), ("10MB", 10 * 1024**2), ("10MiB", 10 * 1024**2),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "10X", "100", "-5M"])
def test_parse_size_refuses_nonsense_and_tiny_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_umask_is_octal() -> None:
    assert parse_umask("027") == 0o027
    assert parse_umask("0077") == 0o077
    for bad in ("8", "abc", "1000"):
        with pytest.raises(ValueError):
            parse_umask(bad)


def test_bad_umask_is_a_usage_error_naming_the_option() -> None:
    with pytest.raises(usage.UsageError, match="--umask"):
        parse("--umask", "999", "-f", "x.tap")


def test_defaults_keep_the_umask_and_the_run_directory() -> None:
    config = parse("-f", "x.tap")
    assert config["umask"] is None and config["rundir"] == "."
    assert config["logfile-keep"] == 5 and config["logfile-rotate"] == "never"
    assert config["logfile-max-size"] is None and config["log-format"] == "text"


def test_plugin_and_its_arguments_are_kept_apart() -> None:
    config = parse("-n", "--shutdown-timeout", "3", "qotd", "--port", "8007", "-n")
    assert config.plugin == "qotd" and config.plugin_argv == ["--port", "8007", "-n"]
    assert config["shutdown-timeout"] == 3.0 and config.source is None
    assert config["no_save"]  # as Twisted: a plugin built in memory is not saved on shutdown


def test_tac_implies_no_save_and_is_the_source() -> None:
    config = parse("-n", "-y", "app.tac")
    assert not config["no_save"] and config.source == ("app.tac", "python")  # saved, as Twisted (seed 002)
    assert parse("-n", "-o", "-y", "app.tac")["no_save"]


@pytest.mark.parametrize("flag, kind", [("-f", None), ("-x", "xml"), ("-s", "source")])
def test_file_options_force_a_format(flag: str, kind: str | None) -> None:
    assert parse("-n", flag, "app.file").source == ("app.file", kind)


@pytest.mark.parametrize("argv, needle", [
    (["-f", "a.tap", "-y", "b.tac"], "--file and --python"),
    (["-f", "a.tap", "qotd"], "not both"),
    (["--stop", "--status"], "only one of --stop, --status and --reload, not --stop and --status"),
    (["--reload", "--stop"], "not --stop and --reload"),
    (["--stop", "--pidfile", ""], "--pidfile"),
    (["-n", "-f", "a.tap", "--logfile-max-size", "1M"], "needs a log file"),
    (["-n", "-f", "a.tap", "--syslog", "--logfile-rotate", "daily"], "needs a log file"),
    (["-n", "-f", "a.tap", "--syslog", "--logger", "x.y"], "--syslog or --logger"),
    (["-n", "-f", "a.tap", "--savestats"], "--profile"),
    (["-n", "-f", "a.tap", "--logfile-keep", "0"], "--logfile-keep"),
    (["-n", "-f", "a.tap", "--log-format", "xml"], "--log-format"),
    (["-n", "-f", "a.tap", "--profiler", "hotshot"], "--profiler"),
    (["-n", "-y", "a.tac", "--passphrase-file", "p"], "never encrypted"),
    ([], "-f FILE, -y FILE.tac or a plugin"),
])
def test_combinations_that_make_no_sense_are_refused(argv: list[str], needle: str) -> None:
    with pytest.raises(usage.UsageError, match=needle.replace("(", r"\(")):
        parse(*argv)


def test_stop_and_status_need_no_application_and_default_to_twistd_pid() -> None:
    assert parse("--status")["pidfile"] == "twistd.pid"
    assert parse("--stop", "--pidfile", "x.pid")["pidfile"] == "x.pid"


def test_a_daemon_may_log_to_syslog_or_a_custom_logger_without_a_file() -> None:
    assert parse("--syslog", "-l", "-", "-f", "a.tap")["syslog"]
    assert parse("--logger", "x.y", "-l", "-", "-f", "a.tap")["logger"] == "x.y"


def test_uid_and_gid_numbers_become_ints_names_stay_names() -> None:
    config = parse("-u", "65534", "-g", "nogroup", "-f", "a.tap")
    assert config["uid"] == 65534 and config["gid"] == "nogroup"


def test_help_lists_options_plugins_and_exit_statuses(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        parse("--help")
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for needle in ("--rundir", "--chroot", "--umask", "--stop", "--status", "--euid", "--logfile-max-size",
                   "--syslog", "--logger", "--log-format", "--profile", "--spew", "--help-reactors",
                   "\n  3  --status: not running", "qotd", "echo"):
        assert needle in out, needle


def test_help_reactors_lists_the_hooks_reactors(capsys) -> None:
    with pytest.raises(SystemExit):
        parse("--help-reactors")
    out = capsys.readouterr().out
    assert "asyncio" in out and "[default]" in out


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "9" * 400])
def test_sizes_that_are_not_sizes(value: str) -> None:
    from tapster.twistd.options import parse_size

    with pytest.raises(ValueError, match="must be"):
        parse_size(value)
