"""Property-based fuzzing of every parser a stranger's bytes reach: each fails only in its own, clean way.

The property is the same everywhere: for any input, the parser returns a
value or raises its documented error (whose message is one line), never
anything else, and never takes long. Inputs are both unstructured (any text
or bytes) and structured (valid documents with hostile parts), so the
fuzzer reaches past the first syntax check.
"""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tapster.core import endpoints, persist, usage
from tapster.core._persist import crypto
from tapster.core.errors import EndpointError, PersistError

FIELD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
KINDS = st.sampled_from(["tcp", "tcp6", "unix", "ssl", "udp", "", "systemd", "9999"])
KEYS = st.sampled_from(["interface", "backlog", "mode", "wantPID", "port", "privateKey", "certKey", "sslmethod",
                        "timeout", "path", "reuse", "x"])


def one_line(error: BaseException) -> None:
    text = str(error)
    assert "\n" not in text and len(text) < 2000, text[:300]


# -- endpoint descriptions ---------------------------------------------------------------


@st.composite
def descriptions(draw: st.DrawFn) -> str:
    parts = [draw(KINDS)]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            parts.append(f"{draw(KEYS)}={draw(FIELD_TEXT)}")
        else:
            parts.append(draw(FIELD_TEXT))
    return ":".join(parts)


@given(st.one_of(descriptions(), st.text(max_size=80)))
def test_endpoint_descriptions(text: str) -> None:
    start = time.monotonic()
    try:
        kind, args, kwargs = endpoints.parse(text)
    except EndpointError as e:
        one_line(e)
    else:
        assert kind in endpoints.KINDS and isinstance(args, tuple) and isinstance(kwargs, dict)
        assert "\x00" not in repr(args) + repr(kwargs)
    assert time.monotonic() - start < 0.5


@given(st.binary(max_size=60))
def test_endpoint_descriptions_as_bytes(data: bytes) -> None:
    try:
        endpoints.parse(data)
    except EndpointError as e:
        one_line(e)


# -- command lines -----------------------------------------------------------------------


class Sample(usage.Options):
    optFlags = [["verbose", "v", "More."], ["quiet", "q", "Less."]]
    optParameters = [["port", "p", "8007", "Where.", usage.portCoerce], ["name", "n", None, "Who."],
                     ["count", "c", "1", "How many.", int]]

    def opt_fortune(self, path: str) -> None:
        """A file."""
        self.setdefault("fortunes", []).append(path)

    def opt_bump(self) -> None:
        """Count."""
        self["bumps"] = self.get("bumps", 0) + 1

    def parseArgs(self, *args: str) -> None:
        self["args"] = args


ARGS = st.lists(st.one_of(
    st.sampled_from(["-v", "-q", "-p", "--port", "--port=", "-n", "--name", "--fortune", "--bump", "-vq", "-pv",
                     "--", "-", "--verb", "--po", "-c", "--count=x", "-x", "--nope", "--help", "--version"]),
    st.text(max_size=12),
), max_size=8)


@given(ARGS)
def test_options_parse_any_command_line(argv: list[str]) -> None:
    try:
        Sample().parseOptions(argv)
    except usage.UsageError as e:
        one_line(e)
    except SystemExit:  # --help and --version print and exit, as in Twisted
        pass


# -- saved files ---------------------------------------------------------------------------

XML_HEAD = "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"
TAGS = ["none", "bool", "int", "float", "complex", "str", "bytes", "list", "tuple", "set", "frozenset", "dict",
        "item", "ref", "global", "instance", "call", "method", "attr", "args", "kwargs", "state", "listitems",
        "dictitems", "bogus"]
ATTRS = st.dictionaries(st.sampled_from(["id", "module", "class", "name", "key", "encoding"]),
                        st.one_of(st.sampled_from(["1", "2", "tapster.core.service", "Application", "Service",
                                                   "builtins", "bytearray", "os", "system", "base64", "text",
                                                   "tapster.core.internet", "TimerService", "x"]),
                                  st.text(max_size=10)), max_size=3)


@st.composite
def xml_elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = "".join(f' {k}="{v}"' for k, v in draw(ATTRS).items()
                    if all(c not in v for c in '<&"') and v.isprintable())
    if depth > 3 or draw(st.booleans()):
        text = draw(st.text(alphabet="0123456789-.eTrueFalsjx ", max_size=8))
        return f"<{tag}{attrs}>{text}</{tag}>"
    children = "".join(draw(st.lists(xml_elements(depth + 1), max_size=3)))
    return f"<{tag}{attrs}>{children}</{tag}>"


def load_bytes(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    start = time.monotonic()
    try:
        persist.load(str(path), passphrase=b"fuzz")
    except PersistError as e:
        one_line(e)
    assert time.monotonic() - start < 2


@given(st.lists(xml_elements(), min_size=1, max_size=2))
def test_xml_loader_structured(tmp_path_factory, elements: list[str]) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("xml")
    load_bytes(tmp, "fuzz.tax", (XML_HEAD + "".join(elements) + "\n</tapster-application>\n").encode())


@given(st.binary(max_size=300))
def test_xml_loader_bytes(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    load_bytes(tmp_path_factory.mktemp("xmlb"), "fuzz.tax", b"<?xml version='1.0'?>" + data)


YAML_SCALARS = st.one_of(st.sampled_from(["~", "true", "no", "0x1F", "1e400", "2001-13-45", "!!binary x", "&a x",
                                          "*a", "!!python/object:os.system x", "[", "{", "- x", "'", '"\\x"',
                                          "9" * 50, "0o777", ".inf", "!!set {a}", "<<: *a"]),
                         st.text(max_size=15))


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    lines = ["tapster: 1"] if draw(st.booleans()) else []
    for key in draw(st.lists(st.sampled_from(["name", "uid", "gid", "services", "bogus"]), max_size=4, unique=True)):
        if key == "services" and draw(st.booleans()):
            lines.append("services:")
            for _ in range(draw(st.integers(0, 3))):
                plugin = draw(st.sampled_from(["qotd", "echo", "nope", ""]))
                lines.append(f"- plugin: {plugin}")
                for option in draw(st.lists(st.sampled_from(["port", "static", "fortune", "prot", "help"]),
                                            max_size=2, unique=True)):
                    lines.append(f"  options: {{{option}: {draw(YAML_SCALARS)}}}")
                if draw(st.booleans()):
                    lines.append(f"  args: [{draw(YAML_SCALARS)}]")
        else:
            lines.append(f"{key}: {draw(YAML_SCALARS)}")
    return "\n".join(lines) + "\n"


@given(yaml_documents())
def test_yaml_loader_structured(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    load_bytes(tmp_path_factory.mktemp("yaml"), "fuzz.yaml", text.encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=300))
def test_yaml_loader_bytes(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    load_bytes(tmp_path_factory.mktemp("yamlb"), "fuzz.yaml", data)


SCRYPT = st.one_of(st.integers(-2, 2**20), st.sampled_from([2**16, 2**40, 2**64, 3]), st.text(max_size=6))


@given(n=SCRYPT, r=SCRYPT, p=SCRYPT, salt=st.text(max_size=30), fmt=st.sampled_from(["pickle", "xml", "x y", ""]),
       tail=st.binary(max_size=80))
def test_encrypted_headers(tmp_path_factory, n: object, r: object, p: object, salt: str, fmt: str,  # type: ignore[no-untyped-def]
                           tail: bytes) -> None:
    line = f"TAPSTER-ENCRYPTED v1 format={fmt} scrypt n={n} r={r} p={p} salt={salt}\n".encode("utf-8", "replace")
    tmp = tmp_path_factory.mktemp("enc")
    load_bytes(tmp, "fuzz.etap", line + tail)


@given(st.binary(max_size=200))
def test_encrypted_reader_bytes(data: bytes) -> None:
    try:
        crypto.read_header(crypto.MAGIC + data, "fuzz.etap")
    except PersistError as e:
        one_line(e)
