"""Static files: types, indexes, listings, validators, ranges, escapes, files that change under us."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapster.plugins.web._static import File, parse_range
from tests.plugins.web._helpers import Conn, make_site


@pytest.fixture
def root(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("<h1>home</h1>")
    (www / "a.txt").write_text("0123456789")
    (www / "sub").mkdir()
    (www / "sub" / "x.css").write_text("b{}")
    (www / "empty").mkdir()
    (www / "empty" / "<b>&.txt").write_text("x")
    (tmp_path / "secret").write_text("top secret")
    os.symlink(tmp_path / "secret", www / "out")
    os.symlink(www / "a.txt", www / "in")
    return www


def get(resource, target: str, *headers: str, method: str = "GET"):
    c = Conn(make_site(resource))
    extra = "".join(h + "\r\n" for h in headers)
    c.send(f"{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode("latin-1"))
    return c.responses(head_only={0} if method == "HEAD" else None)[0]


def test_index_and_types(root):
    r = get(File(str(root)), "/")
    assert r.status == 200 and r.body == b"<h1>home</h1>"
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert get(File(str(root)), "/sub/x.css").header("content-type") == "text/css; charset=utf-8"


def test_directory_without_slash_redirects(root):
    r = get(File(str(root)), "/sub?q=1")
    assert r.status == 301 and r.header("location") == "/sub/?q=1"


def test_directory_without_index_is_403_unless_listing(root):
    assert get(File(str(root)), "/empty/").status == 403
    r = get(File(str(root), directoryListing=True), "/empty/")
    assert r.status == 200 and b"&lt;b&gt;&amp;.txt" in r.body and b"<b>&" not in r.body


@pytest.mark.parametrize("target", ["/../secret", "/%2e%2e/secret", "/sub/../../secret", "/a.txt%00", "/..%2fsecret",
                                    "/%2E%2E%5Csecret", "/\\..\\secret"])
def test_escapes_refused(root, target):
    r = get(File(str(root)), target)
    assert r.status in (403, 404) and b"top secret" not in r.body


def test_symlink_out_of_root_is_403_inside_is_served(root):
    assert get(File(str(root)), "/out").status == 403
    assert get(File(str(root)), "/in").body == b"0123456789"


def test_etag_and_last_modified_give_304(root):
    first = get(File(str(root)), "/a.txt")
    etag, lm = first.header("etag"), first.header("last-modified")
    assert get(File(str(root)), "/a.txt", f"If-None-Match: {etag}").status == 304
    assert get(File(str(root)), "/a.txt", f"If-Modified-Since: {lm}").status == 304
    assert get(File(str(root)), "/a.txt", 'If-None-Match: "other"').status == 200
    assert get(File(str(root)), "/a.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT").status == 200


def test_ranges(root):
    r = get(File(str(root)), "/a.txt", "Range: bytes=2-4")
    assert r.status == 206 and r.body == b"234" and r.header("content-range") == "bytes 2-4/10"
    assert get(File(str(root)), "/a.txt", "Range: bytes=-3").body == b"789"
    assert get(File(str(root)), "/a.txt", "Range: bytes=7-").body == b"789"
    r = get(File(str(root)), "/a.txt", "Range: bytes=20-30")
    assert r.status == 416 and r.header("content-range") == "bytes */10"
    assert get(File(str(root)), "/a.txt", "Range: bytes=0-1,4-5").status == 200
    assert get(File(str(root)), "/a.txt", "Range: bytes=2-4", 'If-Range: "stale"').status == 200


def test_parse_range_edges():
    assert parse_range("bytes=0-0", 1) == (0, 0)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-0", 10) is False
    assert parse_range("bytes=x-1", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=0-", 0) is False


def test_head_and_methods(root):
    r = get(File(str(root)), "/a.txt", method="HEAD")
    assert r.status == 200 and r.header("content-length") == "10"
    r = get(File(str(root)), "/a.txt", method="POST")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"


def test_path_changed_live(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("other")
    resource = File(str(root))
    c = Conn(make_site(resource))
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    resource.path = str(other)
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [r.body for r in c.responses()] == [b"0123456789", b"other"]


def test_large_file_streamed_only_as_the_client_reads(root):
    big = root / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    c = Conn(make_site(File(str(root))))
    c.protocol.dataReceived(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.transport.producer is not None  # nothing read yet beyond the head
    assert len(c.transport.value()) < 1024
    c.transport.producer.resumeProducing()
    assert len(c.transport.value()) < 70 * 1024  # one read per request for more
    c.pump()
    assert c.responses()[0].body == big.read_bytes()


def test_file_deleted_while_served_is_still_whole(root):
    big = root / "gone.bin"
    data = os.urandom(300_000)
    big.write_bytes(data)
    c = Conn(make_site(File(str(root))))
    c.protocol.dataReceived(b"GET /gone.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    big.unlink()
    c.pump()
    assert c.responses()[0].body == data


def test_file_truncated_while_served_aborts(root):
    big = root / "shrink.bin"
    big.write_bytes(b"x" * 300_000)
    c = Conn(make_site(File(str(root))))
    c.protocol.dataReceived(b"GET /shrink.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    c.transport.producer.resumeProducing()
    os.truncate(big, 1000)
    c.pump()
    assert c.transport.aborted


def test_client_gone_closes_the_file(root):
    big = root / "big2.bin"
    big.write_bytes(b"y" * 500_000)
    c = Conn(make_site(File(str(root))))
    c.protocol.dataReceived(b"GET /big2.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    producer = c.transport.producer
    c.close()
    assert producer.fd == -1


def test_open_beneath_closes_the_window_between_the_check_and_the_open(tmp_path: Path) -> None:
    """A directory swapped for a symlink after the path was checked: the open fails, nothing outside is read."""
    import errno

    from tapster.plugins.web._static import _open_beneath

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "page.html").write_text("inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "page.html").write_text("SECRET")
    checked = str(root / "sub" / "page.html")  # resolved and checked: inside the root
    fd = _open_beneath(str(root), checked)
    assert os.read(fd, 100) == b"inside"
    os.close(fd)
    (root / "sub" / "page.html").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside)  # the swap, between the check and the open
    with pytest.raises(OSError) as raised:
        _open_beneath(str(root), checked)
    assert raised.value.errno == errno.ELOOP or isinstance(raised.value, NotADirectoryError)
    (root / "last").symlink_to(outside / "page.html")  # the last component swapped too
    with pytest.raises(OSError):
        _open_beneath(str(root), str(root / "last"))
    with pytest.raises(PermissionError):
        _open_beneath(str(root), str(outside / "page.html"))
