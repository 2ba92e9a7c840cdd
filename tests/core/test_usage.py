"""tapster.core.usage.Options: Twisted's command-line semantics, error cases included."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

import tapster.core
from tapster.core import usage
from tapster.core.errors import TapsterError
from tapster.core.usage import Options, UsageError

# Option classes live at module level so that pickle can find them.


class Base(Options):
    optFlags = [["quiet", "q", "Say nothing."]]


class Server(Base):
    optFlags = [["verbose", "v", "Log every connection."], ["fast", None, "Skip the checks."]]
    optParameters = [
        ["port", "p", 8007, "Port to listen on.", usage.portCoerce],
        ["name", "n", "tapster", "Server name."],
        ["ratio", None, 0.5, "A ratio.", float],
        ["max-clients", "m", None, "Connection limit.", int],
    ]


class Counting(Options):
    """opt_ methods: counters and accumulators, as in Twisted's howto."""

    def __init__(self) -> None:
        super().__init__()
        self["verbosity"] = 0
        self["symbols"] = []

    def opt_verbose(self) -> None:
        """Say more (repeatable)."""
        self["verbosity"] += 1

    def opt_quiet(self) -> None:
        self["verbosity"] -= 1

    def opt_define(self, symbol: str) -> None:
        """Define a symbol."""
        self["symbols"].append(symbol)

    def opt_log_file(self, path: str) -> None:
        """Where to log."""
        self["logfile"] = path

    def opt_level(self, value: str) -> None:
        self["level"] = int(value)

    opt_v = opt_verbose
    opt_q = opt_quiet
    opt_D = opt_define
    opt_logfile = opt_log_file


class TwoFiles(Options):
    def parseArgs(self, origin: str, changed: str) -> None:
        self["origin"] = origin
        self["changed"] = changed


class Lambda(Options):
    optParameters = [["size", "s", 1, "Size.", lambda v: int(v) * 2]]


class Sub(Options):
    optParameters = [["port", "p", 80, "Port.", usage.portCoerce]]

    def parseArgs(self, *files: str) -> None:
        self["files"] = list(files)


class Other(Options):
    optFlags = [["dry-run", "d", "Do nothing."]]


class Main(Options):
    optFlags = [["debug", "b", "Debug."]]
    subCommands = [["serve", "s", Sub, "Serve files."], ["other", None, Other, "Do other things."]]


def parsed(cls: type[Options], *argv: str) -> Options:
    config = cls()
    config.parseOptions(list(argv))
    return config


def usage_error(cls: type[Options], *argv: str) -> str:
    with pytest.raises(UsageError) as info:
        cls().parseOptions(list(argv))
    return str(info.value)


# ------------------------------------------------------------------- flags


def test_flags_default_to_false_and_become_true_when_given():
    config = parsed(Server)
    assert config["verbose"] is False and config["fast"] is False
    config = parsed(Server, "-v", "--fast")
    assert config["verbose"] is True and config["fast"] is True
    assert config["verbose"] == 1  # Twisted's documented 1/0 still compares equal


def test_flags_are_gathered_from_base_classes():
    config = parsed(Server, "-q")
    assert config["quiet"] is True
    assert list(config.defaults)[:3] == ["quiet", "verbose", "fast"]


def test_combined_short_flags():
    config = parsed(Server, "-qv")
    assert config["quiet"] and config["verbose"]


def test_flag_given_a_value_is_an_error_naming_it():
    message = usage_error(Server, "--fast=yes")
    assert "--fast" in message and "takes no value" in message


# -------------------------------------------------------------- parameters


def test_parameter_defaults_are_stored_without_coercion():
    config = parsed(Server)
    assert config["port"] == 8007
    assert config["name"] == "tapster"
    assert config["max-clients"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "9000"],
        ["--port=9000"],
        ["-p", "9000"],
        ["-p9000"],
        ["-vp9000"],
        ["-vp", "9000"],
    ],
)
def test_parameter_spellings(argv):
    assert parsed(Server, *argv)["port"] == 9000


def test_parameter_value_may_start_with_a_dash():
    assert parsed(Server, "--name", "-x")["name"] == "-x"
    assert parsed(Server, "-n", "--")["name"] == "--"


def test_empty_value_after_equals_is_kept():
    assert parsed(Server, "--name=")["name"] == ""


def test_value_may_contain_equals():
    assert parsed(Server, "--name=a=b")["name"] == "a=b"


def test_repeated_parameter_last_one_wins():
    assert parsed(Server, "-p", "1", "--port=2", "-p3")["port"] == 3


def test_parameter_without_value_is_an_error():
    assert usage_error(Server, "--port") == "option --port requires a value: --port=VALUE"
    assert usage_error(Server, "-p") == "option -p requires a value: -p VALUE"


def test_dashes_and_underscores_are_interchangeable_in_long_names():
    assert parsed(Server, "--max_clients=5")["max-clients"] == 5
    assert parsed(Counting, "--log-file=a")["logfile"] == "a"
    assert parsed(Counting, "--log_file=b")["logfile"] == "b"


def test_unique_prefix_of_a_long_option_is_accepted():
    assert parsed(Server, "--po=1")["port"] == 1


def test_abbreviated_option_is_reported_by_its_full_name():
    assert usage_error(Server, "--po") == "option --port requires a value: --port=VALUE"


def test_empty_short_name_means_none():
    class Blank(Options):
        optFlags = [["fast", "", "Fast."]]

    config = Blank()
    assert config.synonyms.get("") is None
    assert "      --fast" in config.getUsage()


def test_ambiguous_prefix_lists_the_candidates():
    message = usage_error(Counting, "--l=1")
    assert "ambiguous" in message and "--level" in message and "--log-file" in message


def test_coerce_converts_values():
    config = parsed(Server, "--ratio", "2.5", "-m", "10")
    assert config["ratio"] == 2.5
    assert config["max-clients"] == 10


def test_coerce_failure_names_option_and_value():
    message = usage_error(Server, "--max-clients=lots")
    assert message == "invalid value for --max-clients: 'lots' is not an integer"
    message = usage_error(Server, "--ratio=x")
    assert "--ratio" in message and "'x'" in message and "not a number" in message


def test_coerce_failure_with_short_option_names_the_long_one():
    message = usage_error(Server, "-p", "70000")
    assert message.startswith("invalid value for --port:")
    assert "70000" in message and "0 and 65535" in message


def test_custom_coerce_error_message_is_passed_on_with_value():
    def even(value: str) -> int:
        if int(value) % 2:
            raise ValueError("must be even")
        return int(value)

    even.coerceDoc = "An even number."

    class Even(Options):
        optParameters = [["count", "c", 0, "How many.", even]]

    assert parsed(Even, "-c4")["count"] == 4
    message = usage_error(Even, "-c3")
    assert message == "invalid value for --count: '3': must be even. An even number."


def test_coerce_failure_is_a_tapster_error_for_the_front_ends():
    with pytest.raises(TapsterError):
        parsed(Server, "--port=x")


# ---------------------------------------------------------- opt_ methods


def test_flag_method_is_called_each_time():
    assert parsed(Counting, "-v", "-v", "--verbose", "-q")["verbosity"] == 2
    assert parsed(Counting, "-vvv")["verbosity"] == 3


def test_parameter_method_accumulates():
    assert parsed(Counting, "-DFOO", "-D", "BAR", "--define=BAZ")["symbols"] == ["FOO", "BAR", "BAZ"]


def test_alias_long_names_and_canonical_is_longest():
    config = parsed(Counting, "--logfile", "x")
    assert config["logfile"] == "x"
    assert config.synonyms["logfile"] == "log-file"  # an opt_ method's longest name, dashed (Twisted)
    assert config.synonyms["D"] == "define"


def test_method_docstring_is_its_help():
    text = Counting().getUsage(width=100)
    assert "-D, --define=" in text and "Define a symbol." in text
    assert "-v, --verbose" in text and "Say more (repeatable)." in text
    assert "--log-file=" in text and "Where to log." in text


def test_method_rejecting_a_value_becomes_usage_error():
    message = usage_error(Counting, "--level=high")
    assert message.startswith("invalid value for --level: 'high'")


def test_method_overrides_declared_parameter_but_keeps_its_default():
    class Override(Options):
        optParameters = [["port", "p", None, "Port."], ["host", "h", "localhost", "Host."]]

        def opt_port(self, value: str) -> None:
            self["port"] = int(value) + 1

    config = Override()
    assert config["port"] is None and config["host"] == "localhost"
    config.parseOptions(["-p", "1"])
    assert config["port"] == 2


def test_setting_opt_to_none_removes_the_option():
    class NoVersion(Options):
        opt_version = None

    assert "--version" not in NoVersion().getUsage()
    assert "not recognized" in usage_error(NoVersion, "--version")


def test_method_with_two_arguments_is_rejected():
    class Bad(Options):
        def opt_pair(self, a: str, b: str) -> None:
            pass

    with pytest.raises(UsageError, match="opt_pair"):
        Bad()


def test_flagFunction():
    class Probe(Options):
        def opt_a(self) -> None: ...

        def opt_b(self, value: str) -> None: ...

        def opt_c(self, value: str = "x") -> None: ...

    probe = Probe()
    assert usage.flagFunction(probe.opt_a) is True
    assert usage.flagFunction(probe.opt_b) is False
    assert usage.flagFunction(probe.opt_c) is False


# ------------------------------------------------------------- argument scan


def test_double_dash_ends_options():
    config = parsed(Sub, "-p", "1", "--", "-p", "2")
    assert config["port"] == 1 and config["files"] == ["-p", "2"]


def test_options_stop_at_first_argument_as_getopt_does():
    config = parsed(Sub, "a", "-p", "2")
    assert config["port"] == 80 and config["files"] == ["a", "-p", "2"]


def test_lone_dash_is_an_argument():
    assert parsed(Sub, "-")["files"] == ["-"]


def test_every_option_is_checked_before_any_handler_runs():
    # --help comes first but the bad option is reported instead of printing help.
    assert "--bogus" in usage_error(Server, "--help", "--bogus")


def test_parseOptions_defaults_to_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog", "--port=1234"])
    config = Server()
    config.parseOptions()
    assert config["port"] == 1234


def test_parseOptions_refuses_a_string():
    with pytest.raises(TypeError, match="list of arguments"):
        Server().parseOptions("--port 1")  # type: ignore[arg-type]


def test_unknown_long_option_suggests_a_close_match():
    assert usage_error(Server, "--prot=1") == "option --prot not recognized (did you mean --port?)"
    assert usage_error(Server, "--verbse") == "option --verbse not recognized (did you mean --verbose?)"


def test_unknown_long_option_without_close_match_points_to_help():
    message = usage_error(Server, "--zzzzzz")
    assert message == "option --zzzzzz not recognized (run with --help to list the options)"


def test_unknown_short_option():
    assert usage_error(Server, "-x").startswith("option -x not recognized")
    assert usage_error(Server, "-vx").startswith("option -x not recognized")


# --------------------------------------------------------------- parseArgs


def test_default_parseArgs_takes_no_arguments():
    message = usage_error(Server, "extra")
    assert message.startswith("Wrong number of arguments.")
    assert "no arguments" in message and "'extra'" in message


def test_parseArgs_receives_exactly_its_arguments():
    config = parsed(TwoFiles, "a", "b")
    assert (config["origin"], config["changed"]) == ("a", "b")


@pytest.mark.parametrize("argv", [[], ["a"], ["a", "b", "c"]])
def test_parseArgs_wrong_count_is_a_usage_error(argv):
    message = usage_error(TwoFiles, *argv)
    assert message.startswith("Wrong number of arguments.")
    assert "2 arguments (ORIGIN CHANGED)" in message


def test_parseArgs_with_varargs_accepts_any_number():
    assert parsed(Sub)["files"] == []
    assert parsed(Sub, *"abcdef")["files"] == list("abcdef")


def test_parseArgs_optional_arguments():
    class Opt(Options):
        def parseArgs(self, first: str, second: str = "two") -> None:
            self["args"] = (first, second)

    assert parsed(Opt, "1")["args"] == ("1", "two")
    assert parsed(Opt, "1", "2")["args"] == ("1", "2")
    assert "1 to 2 arguments (FIRST [SECOND])" in usage_error(Opt, "1", "2", "3")


def test_type_error_inside_parseArgs_is_not_mistaken_for_wrong_count():
    class Buggy(Options):
        def parseArgs(self, value: str) -> None:
            len(5)  # type: ignore[arg-type]

    with pytest.raises(TypeError):
        parsed(Buggy, "x")


# ------------------------------------------------------------- postOptions


def test_postOptions_runs_last_and_may_raise_usage_error():
    class Picky(Options):
        optFlags = [["fast", "f", ""], ["good", "g", ""], ["cheap", "c", ""]]

        def postOptions(self) -> None:
            if self["fast"] and self["good"] and self["cheap"]:
                raise UsageError("--fast, --good and --cheap: pick two")
            self["checked"] = True

    assert parsed(Picky, "-fg")["checked"] is True
    assert usage_error(Picky, "-fgc") == "--fast, --good and --cheap: pick two"


def test_parent_postOptions_sees_parsed_sub_options():
    seen = {}

    class Parent(Main):
        def postOptions(self) -> None:
            seen["port"] = self.subOptions["port"]

    parsed(Parent, "serve", "-p", "99")
    assert seen == {"port": 99}


# ------------------------------------------------------------- subCommands


def test_sub_command_by_name_gets_the_rest_of_the_line():
    config = parsed(Main, "-b", "serve", "--port", "81", "f1", "f2")
    assert config["debug"] is True
    assert config.subCommand == "serve"
    assert isinstance(config.subOptions, Sub)
    assert config.subOptions["port"] == 81 and config.subOptions["files"] == ["f1", "f2"]
    assert config.subOptions.parent is config


def test_sub_command_by_shortcut():
    config = parsed(Main, "s", "-p1")
    assert config.subCommand == "serve" and config.subOptions["port"] == 1


def test_options_after_the_command_belong_to_it():
    assert "not recognized" in usage_error(Main, "other", "--port=1")
    assert "not recognized" in usage_error(Main, "--dry-run", "other")


def test_unknown_command_suggests_and_lists():
    message = usage_error(Main, "serv")
    assert message == "Unknown command: serv (did you mean serve?). Commands: serve, other."


def test_no_command_given_calls_parseArgs_with_nothing():
    config = parsed(Main, "-b")
    assert config.subCommand is None
    assert not hasattr(config, "subOptions")


def test_default_sub_command_when_none_given():
    class WithDefault(Main):
        defaultSubCommand = "other"

    config = parsed(WithDefault)
    assert config.subCommand == "other" and config.subOptions["dry-run"] is False


def test_parser_class_is_called_only_for_the_chosen_command():
    calls = []

    def loader(name, cls):
        def load():
            calls.append(name)
            return cls()

        return load

    class Lazy(Options):
        subCommands = [
            ["serve", None, loader("serve", Sub), "Serve."],
            ["other", None, loader("other", Other), "Other."],
        ]

    Lazy().getUsage()
    assert calls == []
    config = parsed(Lazy, "other", "-d")
    assert calls == ["other"]
    assert config.subOptions["dry-run"] is True


def test_errors_inside_a_sub_command_propagate():
    assert usage_error(Main, "serve", "--port=x").startswith("invalid value for --port")


# ------------------------------------------------------------ help, usage


def test_getUsage_lists_every_option_with_docs_and_defaults():
    text = Server().getUsage(width=100)
    assert text.startswith("Options:\n")
    for expected in [
        "-q, --quiet",
        "Say nothing.",
        "-v, --verbose",
        "Log every connection.",
        "    --fast",
        "-p, --port=",
        "Port to listen on. Must be an int between 0 and 65535. [default: 8007]",
        "-n, --name=",
        "Server name. [default: tapster]",
        "--ratio=",
        "[default: 0.5]",
        "-m, --max-clients=",
        "--help",
        "Display this help and exit.",
        "--version",
    ]:
        assert expected in text, expected
    assert "[default: None]" not in text
    # flags never show a default
    verbose_line = next(line for line in text.splitlines() if "--verbose" in line)
    assert "default" not in verbose_line


def test_getUsage_orders_declared_options_first_and_help_last():
    lines = [line for line in Server().getUsage(width=100).splitlines() if line.startswith("  ")]
    assert "--quiet" in lines[0]
    assert "--help" in lines[-2] and "--version" in lines[-1]


def test_getUsage_wraps_to_width():
    class Wordy(Options):
        optParameters = [["text", "t", None, "word " * 40]]
        longdesc = "long description " * 20

    text = Wordy().getUsage(width=50)
    assert all(len(line) <= 50 for line in text.splitlines()), text
    assert "long description" in text


def test_getUsage_width_defaults_to_COLUMNS(monkeypatch):
    class Wordy(Options):
        optParameters = [["text", "t", None, "word " * 40]]

    monkeypatch.setenv("COLUMNS", "60")
    assert max(len(line) for line in Wordy().getUsage().splitlines()) <= 60


def test_docs_dict_overrides_help_text():
    class Documented(Server):
        docs = {"port": "Where clients connect.", "max_clients": "At most this many."}

    config = Documented()
    text = config.getUsage(width=120)
    assert "Where clients connect." in text and "Port to listen on." not in text
    assert "At most this many." in text
    assert config.docs["port"] == "Where clients connect."


def test_getUsage_lists_commands_and_marks_the_default():
    class WithDefault(Main):
        defaultSubCommand = "serve"
        longdesc = "Does things."

    text = WithDefault().getUsage(width=80)
    assert "Does things." in text
    commands = text[text.index("Commands:") :]
    assert "serve, s" in commands and "Serve files. (default)" in commands
    assert "other" in commands and "Do other things." in commands


def test_getUsage_after_a_command_is_the_command_usage():
    config = parsed(Main, "serve")
    assert "--port=" in config.getUsage()


def test_getSynopsis(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/mktap"])
    assert Main().getSynopsis() == "Usage: mktap [options]"

    class Custom(Options):
        synopsis = "[options] <file>"

    assert Custom().getSynopsis() == "Usage: mktap [options] <file>"

    class Verbatim(Options):
        synopsis = "Usage: mktap [options] <command>"

    assert Verbatim().getSynopsis() == "Usage: mktap [options] <command>"

    class Named(Options):
        programName = "twistd"

    assert Named().getSynopsis() == "Usage: twistd [options]"


def test_sub_command_synopsis_includes_the_parent(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mktap"])
    config = parsed(Main, "serve")
    assert config.subOptions.getSynopsis() == "Usage: mktap [options] serve [options]"


def test_str_is_synopsis_then_usage(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mktap"])
    config = Server()
    assert str(config) == config.getSynopsis() + "\n" + config.getUsage()


def test_help_prints_usage_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mktap"])
    with pytest.raises(SystemExit) as info:
        Server().parseOptions(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: mktap [options]\nOptions:\n")
    assert "--port=" in out and "Log every connection." in out


def test_help_of_a_sub_command(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mktap"])
    with pytest.raises(SystemExit) as info:
        Main().parseOptions(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: mktap [options] serve [options]\n")
    assert "-p, --port=" in out


def test_version_uses_the_class_version(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["qotd"])

    class Versioned(Options):
        version = "2.5"

    with pytest.raises(SystemExit) as info:
        Versioned().parseOptions(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "qotd 2.5\n"


def test_version_defaults_to_tapster_version(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mktap"])
    with pytest.raises(SystemExit) as info:
        Main().parseOptions(["other", "--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"mktap other {tapster.core.__version__}\n"


# ---------------------------------------------------------------- dict-ness


def test_options_is_a_dict_and_opts_is_itself():
    config = parsed(Server, "-p", "1")
    assert isinstance(config, dict)
    assert config.opts is config
    assert dict(config) == {
        "quiet": False,
        "verbose": False,
        "fast": False,
        "port": 1,
        "name": "tapster",
        "ratio": 0.5,
        "max-clients": None,
    }


def test_options_are_hashable_by_identity():
    a, b = Server(), Server()
    assert a == b
    assert len({a, b}) == 2


def test_twisted_introspection_attributes():
    config = Server()
    assert config.defaults["port"] == 8007
    assert config.docs["port"] == "Port to listen on."
    assert config.synonyms["p"] == "port"
    assert "port=" in config.longOpt and "verbose" in config.longOpt
    assert "p:" in config.shortOpt and "v" in config.shortOpt


# ------------------------------------------------------------------ pickling


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_values(protocol):
    config = parsed(Server, "-v", "-p", "1", "--name=x")
    clone = pickle.loads(pickle.dumps(config, protocol))
    assert type(clone) is Server
    assert dict(clone) == dict(config)
    assert clone.opts is clone
    clone.parseOptions(["--port=2"])  # still parses: tables were rebuilt
    assert clone["port"] == 2 and config["port"] == 1


def test_pickle_with_lambda_coerce_and_sub_options():
    lam = pickle.loads(pickle.dumps(parsed(Lambda, "-s", "3")))
    assert lam["size"] == 6
    lam.parseOptions(["-s", "4"])
    assert lam["size"] == 8

    config = parsed(Main, "-b", "serve", "-p", "5", "f")
    clone = pickle.loads(pickle.dumps(config))
    assert clone.subCommand == "serve"
    assert clone.subOptions["port"] == 5 and clone.subOptions["files"] == ["f"]
    assert clone.subOptions.parent is clone


def test_pickle_keeps_the_parse_tables_out_of_the_file():
    data = pickle.dumps(parsed(Server))
    assert b"_specs" not in data and b"longOpt" not in data


def test_copies_do_not_alias_the_original():
    config = parsed(Counting, "-DA")
    shallow = copy.copy(config)
    assert shallow.opts is shallow
    deep = copy.deepcopy(config)
    deep["symbols"].append("B")
    assert config["symbols"] == ["A"]
    deep.parseOptions(["-v"])
    assert deep["verbosity"] == 1 and config["verbosity"] == 0


# ---------------------------------------------------------------- coercion


@pytest.mark.parametrize("value, port", [("0", 0), ("80", 80), ("65535", 65535), (" 8007 ", 8007)])
def test_portCoerce_accepts_the_range(value, port):
    assert usage.portCoerce(value) == port


@pytest.mark.parametrize("value", ["-1", "65536", "abc", "", "1.5"])
def test_portCoerce_rejects_with_a_clear_message(value):
    with pytest.raises(ValueError, match="Must be an int between 0 and 65535"):
        usage.portCoerce(value)


def test_portCoerce_message_names_the_value():
    with pytest.raises(ValueError, match="port 70000 is out of range"):
        usage.portCoerce("70000")
    with pytest.raises(ValueError, match="'http' is not a port number"):
        usage.portCoerce("http")
    assert usage.portCoerce.coerceDoc == "Must be an int between 0 and 65535."


def test_CoerceParameter_dispatch():
    config = Server()
    parameter = usage.CoerceParameter(config, int)
    parameter.dispatch("max-clients", "7")
    assert config["max-clients"] == 7
    with pytest.raises(UsageError, match="--max-clients requires a value"):
        parameter.dispatch("max-clients", None)
    with pytest.raises(UsageError, match="'x' is not an integer"):
        parameter.dispatch("max-clients", "x")
    assert usage.CoerceParameter(config, usage.portCoerce).doc == usage.portCoerce.coerceDoc


# ------------------------------------------------------ declaration mistakes


def test_declaration_mistakes_are_reported_with_the_class():
    class TooLong(Options):
        optFlags = [["a", "a", "doc", "extra"]]

    class NoName(Options):
        optParameters = [[None, "x", 1, "doc"]]

    class LongShort(Options):
        optFlags = [["all", "al", "doc"]]

    with pytest.raises(ValueError, match=r"TooLong\.optFlags.*at most 3"):
        TooLong()
    with pytest.raises(ValueError, match=r"NoName\.optParameters.*no long name"):
        NoName()
    with pytest.raises(ValueError, match="short name 'al'"):
        LongShort()


# ---------------------------------------------------------------- completion


def test_Completions_holds_its_data():
    files = usage.CompleteFiles("*.tap")
    data = usage.Completions(
        descriptions={"port": "the port"},
        multiUse=["verbose"],
        mutuallyExclusive=[("a", "b")],
        optActions={"file": files},
        extraActions=[usage.CompleteDirs(), usage.CompleteFiles(repeat=True)],
    )
    assert data.descriptions == {"port": "the port"}
    assert data.multiUse == ["verbose"]
    assert data.mutuallyExclusive == [("a", "b")]
    assert data.optActions["file"] is files
    assert len(data.extraActions) == 2
    empty = usage.Completions()
    assert (empty.descriptions, empty.multiUse, empty.optActions, empty.extraActions) == ({}, [], {}, [])


def test_Completions_repeat_only_on_the_last_extra_action():
    with pytest.raises(ValueError, match="repeat=True must be the last"):
        usage.Completions(extraActions=[usage.CompleteFiles(repeat=True), usage.CompleteDirs()])


def test_completer_descriptions():
    assert usage.Completer()._description("port") == "port"
    assert usage.Completer(descr="number")._description("port") == "number"
    assert usage.CompleteFiles("*.tap")._description("file") == "file (*.tap)"
    assert usage.CompleteGroups()._description("group-opt") == "group"
    assert usage.CompleteFiles(repeat=True)._repeatFlag == "*"
    assert usage.CompleteList(["a", "b"])._items == ["a", "b"]


# ------------------------------------------------------------------ module


def test_public_names():
    assert set(usage.__all__) == {
        "UsageError",
        "Options",
        "OptionSpec",
        "CoerceParameter",
        "portCoerce",
        "flagFunction",
        "Completions",
        "Completer",
        "CompleteFiles",
        "CompleteDirs",
        "CompleteList",
        "CompleteMultiList",
        "CompleteUsernames",
        "CompleteGroups",
        "CompleteHostnames",
        "CompleteUserAtHost",
        "CompleteNetInterfaces",
    }
    for name in usage.__all__:
        assert hasattr(usage, name)
    assert issubclass(UsageError, TapsterError)


def test_importing_usage_stays_light():
    code = (
        "import sys; before = set(sys.modules); import tapster.core.usage; "
        "heavy = {'asyncio', 'typing', 're', 'textwrap', 'inspect', 'difflib', 'rich'}; "
        "heavy &= set(sys.modules) - before; "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_longdesc_paragraph_with_indented_lines_is_kept_as_written():
    class Opts(usage.Options):
        longdesc = "A long paragraph that is wrapped.\n\nExit status:\n  0  fine\n  1  broken"

    text = Opts().getUsage(width=40)
    assert "Exit status:\n  0  fine\n  1  broken" in text


# ------------------------------------------------- Twisted compatibility (issue 10, item 5)


def test_optStrings_is_read_as_optParameters():
    class Old(Options):
        optStrings = [["host", "h", "localhost", "Host to bind."]]
        optParameters = [["port", "p", "8007", "Port."]]

    class Older(Old):
        optStrings = [["user", "u", None, "Run as."]]

    config = parsed(Older, "-h", "example.org", "--user=nobody")
    assert (config["host"], config["port"], config["user"]) == ("example.org", "8007", "nobody")
    assert parsed(Older)["host"] == "localhost"
    assert "--host=" in Older().getUsage(width=100)
    assert config.synonyms["h"] == "host"


def test_synonyms_of_an_opt_method_name_its_longest_dashed_name():
    class Opts(Options):
        def opt_very_very_long(self) -> None:
            """A flag with three names."""
            self["seen"] = True

        opt_short = opt_very_very_long
        opt_s = opt_very_very_long

    config = parsed(Opts, "--short")
    assert config["seen"] is True
    assert {name: config.synonyms[name] for name in ("s", "short", "very-very-long")} == dict.fromkeys(
        ("s", "short", "very-very-long"), "very-very-long")


def test_synonyms_of_a_declared_option_name_its_long_name_as_written():
    class Opts(Options):
        optParameters = [["log_file", "l", None, "Log."]]

    assert Opts().synonyms["l"] == "log_file"


def test_coerce_function_of_a_plugin_raises_twisteds_message():
    def picky(value: str) -> str:
        raise ValueError("Yay")

    class Opts(Options):
        optParameters = [["thing", None, None, "A thing.", picky]]

    assert usage_error(Opts, "--thing", "x") == "Parameter type enforcement failed: Yay"


def test_coerce_raising_something_else_is_not_swallowed():
    def broken(value: str) -> str:
        raise RuntimeError("Ouch")

    class Opts(Options):
        optParameters = [["thing", None, None, "A thing.", broken]]

    with pytest.raises(RuntimeError):
        parsed(Opts, "--thing", "x")


def test_unknown_short_option_uses_getopts_words():
    assert usage_error(Server, "-Z") == "option -Z not recognized"


def test_flagFunction_rejects_many_arguments_in_twisteds_words():
    def many(a: object, b: object) -> None: ...

    with pytest.raises(UsageError, match=r"^Invalid Option function for many$"):
        usage.flagFunction(many)
    with pytest.raises(UsageError, match=r"^Invalid Option function for opt_x$"):
        usage.flagFunction(many, "opt_x")


def test_completers_accept_no_items_and_refuse_unknown_shells():
    assert usage.CompleteList(None)._shellCode("x", usage._ZSH) == ":x:()"
    assert usage.CompleteMultiList(None)._items == []
    with pytest.raises(NotImplementedError):
        usage.CompleteList(None)._shellCode("x", "bad_shell_type")
    assert usage.CompleteFiles()._shellCode("f", usage._ZSH) == ':f (*):_files -g "*"'
    assert usage.CompleteGroups()._shellCode("g", usage._ZSH) == ":group:_groups"
    assert usage.CompleteUsernames(descr="who", repeat=True)._shellCode("u", usage._ZSH) == "*:who:_users"
