"""The thin adapter between an asyncio transport and a Twisted-style protocol.

Every byte a tapster server sends goes through :class:`Transport.write`, so it
is the asyncio transport's own bound ``write`` stored on the instance: no extra
Python frame per call. Everything else here runs once per connection or only
when flow control kicks in.

Flow control: asyncio tells the protocol ``pause_writing()`` when the kernel
and the transport buffer are full, ``resume_writing()`` when they drained.
A registered producer is paused and resumed accordingly (a pull producer is
asked for more with ``resumeProducing()`` while the buffer has room). With no
producer registered, the transport stops *reading* from the peer while its
write buffer is full: an echo-like protocol facing a client that sends but
never reads therefore never buffers without bound.

Held writes: the framing protocols of :mod:`tapster.core.basic` call
:meth:`Transport._hold_writes` around one ``dataReceived``, so that the lines
a pipelined chunk produces leave in one write system call instead of one per
``sendLine`` (uvloop writes at once whenever its buffer is empty). Holding
swaps the ``write`` attribute for a collector and back, so a plain protocol,
which never holds, still calls the asyncio transport's ``write`` directly.

sendfile: :meth:`Transport.sendfile` hands the kernel a range of an open file
to send on the socket (``os.sendfile``, zero copy), for plain TCP and UNIX
connections; it returns None where that cannot be done (TLS, no
``os.sendfile``, no socket) and the caller writes the bytes itself. It is
additive: ``write`` and everything above are unchanged, and a connection that
never calls it pays one ``None`` slot. How it meets the asyncio transport (uvloop
or asyncio's own), which owns the socket: it calls ``os.sendfile`` only while
that transport's write buffer is empty (``get_write_buffer_size() == 0``), so
bytes never overtake what was written before; and it waits for writability
on a *duplicate* of the socket's descriptor (``loop.add_writer`` refuses the
transport's own fd), removed from the loop and closed before the connection
closes, so the duplicate never keeps the socket open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from tapster.core.address import from_sockaddr
from tapster.core.failure import Failure

if TYPE_CHECKING:
    import asyncio
    import socket
    from typing import Protocol as _TypingProtocol

    class _FileLike(_TypingProtocol):
        def fileno(self) -> int: ...

    from tapster.core.interfaces import IAddress, IConnector, IPullProducer, IPushProducer
    from tapster.core.protocol import Protocol

__all__ = ["Transport", "attach"]

#: Bytes asked of one ``os.sendfile`` call, and sent in one turn of the loop before yielding to others.
SENDFILE_CHUNK = 1 << 20
SENDFILE_TURN = 4 << 20


class Transport:
    """What ``protocol.transport`` is for stream connections (TCP, UNIX, SSL)."""

    __slots__ = (
        "_t",
        "protocol",
        "write",
        "disconnecting",
        "producer",
        "streamingProducer",
        "connector",
        "_kind",
        "connected",
        "_writing_paused",
        "_reading_paused_by_us",
        "_reading_paused_by_protocol",
        "_lost_hook",
        "_aborted",
        "_held",
        "_sendfile",
        "__weakref__",
    )

    def __init__(
        self,
        aio_transport: asyncio.Transport,
        protocol: Protocol,
        kind: str = "TCP",
        connector: IConnector | None = None,
        lost_hook: Callable[[Failure], None] | None = None,
    ) -> None:
        self._t = aio_transport
        self.protocol = protocol
        self.write: Callable[[bytes], None] = aio_transport.write
        self.disconnecting = False
        self.producer: IPushProducer | IPullProducer | None = None
        self.streamingProducer = False
        self.connector = connector
        self._kind = kind
        self.connected = True
        self._writing_paused = False
        self._reading_paused_by_us = False
        self._reading_paused_by_protocol = False
        self._lost_hook = lost_hook
        self._aborted = False
        self._held: list[bytes] | None = None
        self._sendfile: _Sendfile | None = None

    # -- ITransport ---------------------------------------------------------

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Write an iterable of bytes in one go."""
        if self._held is not None:
            for chunk in data:
                self._write_held(chunk)
            return
        self._t.writelines(data)

    def loseConnection(self) -> None:
        """Close once everything written so far has been sent."""
        if self.disconnecting:
            return
        self.disconnecting = True
        if self._held:
            # Everything written before loseConnection leaves before the close; what is
            # written after it meets a closing transport, as it would without holding.
            self._send_held()
        if self._sendfile is not None:
            self._sendfile.close_after = True  # the file's bytes first, then the close
            return
        self._t.close()

    def abortConnection(self) -> None:
        """Close at once, dropping unsent data; ``connectionLost`` gets ConnectionLost.

        asyncio reports a local abort to ``connection_lost`` as ``None`` (a clean
        close), so the flag set here is what tells the protocol it was not clean.
        """
        self.disconnecting = True
        self._aborted = True
        if self._held:  # unsent, like the rest of the buffer
            self._held.clear()
        if self._sendfile is not None:
            self._sendfile.stop()
        self._t.abort()

    def getPeer(self) -> IAddress:
        return from_sockaddr(self._t.get_extra_info("peername"), self._kind)

    def getHost(self) -> IAddress:
        return from_sockaddr(self._t.get_extra_info("sockname"), self._kind)

    def getHandle(self) -> socket.socket:
        """The underlying socket object (asyncio's read-only socket wrapper, which has a socket's methods)."""
        sock: socket.socket = self._t.get_extra_info("socket")
        return sock

    def getTcpNoDelay(self) -> bool:
        import socket

        sock = self.getHandle()
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def setTcpNoDelay(self, enabled: bool) -> None:
        import socket

        self.getHandle().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(bool(enabled)))

    def getTcpKeepAlive(self) -> bool:
        import socket

        return bool(self.getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))

    def setTcpKeepAlive(self, enabled: bool) -> None:
        import socket

        self.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(bool(enabled)))

    def logPrefix(self) -> str:
        return type(self.protocol).__name__

    # -- held writes (for tapster.core.basic) ---------------------------------

    def _hold_writes(self) -> list[bytes] | None:
        """Collect what is written from now on, until :meth:`_release_writes` sends it as one write.

        Returns the list the writes collect in (a framing protocol appends
        its ``sendLine``/``sendString`` output to it directly, saving a call
        per message), or None, holding nothing, when writes are already held
        (the caller is nested inside the one that holds them) or the
        transport is closing. Order is kept because ``write``,
        ``writeSequence`` and those appends all land in the same list.
        """
        if self._held is not None or self.disconnecting:
            return None
        held = self._held = []
        self.write = self._write_held
        return held

    def _write_held(self, data: bytes) -> None:
        """``write`` while writes are held: keep a copy of ``data`` for the release."""
        held = self._held
        if held is None:  # someone kept this bound method past the release: write now
            self._t.write(data)
            return
        if type(data) is not bytes:
            # A bytearray could change before the release; a str or an int raises
            # TypeError here, where it was written, as the asyncio transport's write does.
            data = memoryview(data).tobytes()
        if data:
            held.append(data)

    def _send_held(self) -> None:
        """Send what is held so far, in one write, and go on holding."""
        held = self._held
        if held:
            self._t.write(held[0] if len(held) == 1 else b"".join(held))
            held.clear()

    def _release_writes(self) -> None:
        """Send what is held and stop holding: ``write`` is the asyncio transport's again."""
        self._send_held()
        self._held = None
        self.write = self._t.write

    # -- sendfile (tapster's addition; see the module docstring) ---------------

    def writeBufferSize(self) -> int:
        """Bytes written but not yet handed to the kernel (the asyncio transport's buffer)."""
        return int(self._t.get_write_buffer_size())

    def sendfile(self, file: int | _FileLike, offset: int, count: int,
                 progress: Callable[[int], None] | None = None) -> asyncio.Future[int] | None:
        """Send ``count`` bytes of ``file`` (an fd or an object with ``fileno()``) from ``offset``, zero copy.

        Returns None, having done nothing, when the connection cannot do it
        (TLS, no ``os.sendfile``, no socket): write the bytes instead; a
        second call before the first is done raises RuntimeError. Else a future for the number of bytes sent;
        it never raises. Fewer than ``count`` means the file ended early or
        the connection went away (``connected`` is then false; a peer that
        went away while sending aborts the connection, so ``connectionLost``
        hears ConnectionLost); nothing is sent after the future is done.

        The contract while it runs: the bytes go after everything written
        before the call (the asyncio transport's buffer drains first) and the
        protocol writes nothing until the future is done. The file stays open
        and is the caller's to close (``file``'s offset is not used or
        moved: ``offset`` is). ``progress(n)``, if given, is called as each
        part is taken by the kernel. A socket that is full waits for
        writability without blocking the loop; at most ``SENDFILE_TURN`` bytes
        go per turn of the loop. ``loseConnection`` meanwhile closes after
        the last byte; ``abortConnection`` stops at once.
        """
        import asyncio
        import os

        if self._sendfile is not None:
            raise RuntimeError("a sendfile is already in progress on this connection")
        if self._kind == "SSL" or not hasattr(os, "sendfile"):
            return None
        t = self._t
        if t.get_extra_info("sslcontext") is not None:
            return None
        sock = t.get_extra_info("socket")
        try:
            sock_fd = sock.fileno() if sock is not None else -1
            file_fd = file if isinstance(file, int) else file.fileno()
        except (OSError, ValueError, AttributeError):
            return None
        if sock_fd < 0:
            return None
        loop = asyncio.get_event_loop()
        future: asyncio.Future[int] = loop.create_future()
        if count <= 0 or self.disconnecting or t.is_closing():
            future.set_result(0)
            return future
        if self._held:
            self._send_held()
        job = self._sendfile = _Sendfile(self, loop, sock_fd, file_fd, offset, count, future, progress)
        job.run()
        return future

    # -- IConsumer -------------------------------------------------------------

    def registerProducer(self, producer: IPushProducer | IPullProducer, streaming: bool) -> None:
        """Attach a producer whose output this transport consumes.

        ``streaming`` producers are paused and resumed as the write buffer
        fills and drains; pull producers get ``resumeProducing()`` whenever
        there is room for more.
        """
        if self.producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer {self.producer!r} was never unregistered."
            )
        if self._t.is_closing():
            producer.stopProducing()
            return
        self.producer = producer
        self.streamingProducer = bool(streaming)
        if streaming:
            if self._writing_paused:
                cast("IPushProducer", producer).pauseProducing()
        else:
            self._schedule_pull()

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streamingProducer = False

    def _schedule_pull(self) -> None:
        import asyncio

        asyncio.get_event_loop().call_soon(self._pull)

    def _pull(self) -> None:
        producer = self.producer
        if producer is None or self.streamingProducer or self._writing_paused or self._t.is_closing():
            return
        producer.resumeProducing()
        if self.producer is producer and not self._writing_paused:
            self._schedule_pull()

    # -- IPushProducer: the transport produces what the peer sends -----------

    def pauseProducing(self) -> None:
        """Stop reading from the peer until :meth:`resumeProducing`."""
        self._reading_paused_by_protocol = True
        self._sync_reading()

    def resumeProducing(self) -> None:
        """Read again, unless the write buffer is still full (flow control keeps its pause)."""
        self._reading_paused_by_protocol = False
        self._sync_reading()

    def _sync_reading(self) -> None:
        # Two independent reasons to stop reading: the protocol asked, or our own write
        # buffer is full. Reading resumes only when neither holds.
        t = self._t
        if t.is_closing():
            return
        paused = self._reading_paused_by_protocol or self._reading_paused_by_us
        if paused and t.is_reading():
            t.pause_reading()
        elif not paused and not t.is_reading():
            t.resume_reading()

    def stopProducing(self) -> None:
        self.loseConnection()

    # -- called by the protocol's asyncio callbacks ---------------------------

    def _pause_writing(self) -> None:
        self._writing_paused = True
        producer = self.producer
        if producer is not None:
            if self.streamingProducer:
                cast("IPushProducer", producer).pauseProducing()
        else:
            self._reading_paused_by_us = True
            self._sync_reading()

    def _resume_writing(self) -> None:
        self._writing_paused = False
        producer = self.producer
        if producer is not None:
            if self.streamingProducer:
                producer.resumeProducing()
            else:
                self._schedule_pull()
        if self._reading_paused_by_us:
            self._reading_paused_by_us = False
            self._sync_reading()

    def _connection_lost(self, reason: Failure) -> None:
        self.disconnecting = True
        self.connected = False
        if self._sendfile is not None:
            self._sendfile.stop()
        producer = self.producer
        if producer is not None:
            self.producer = None
            producer.stopProducing()

    def __repr__(self) -> str:
        return f"<{self._kind} Transport of {type(self.protocol).__name__}>"


class _Sendfile:
    """One :meth:`Transport.sendfile` in progress."""

    __slots__ = ("transport", "loop", "sock_fd", "file_fd", "offset", "remaining", "sent", "future", "progress",
                 "watch_fd", "close_after")

    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop, sock_fd: int, file_fd: int,
                 offset: int, count: int, future: asyncio.Future[int],
                 progress: Callable[[int], None] | None) -> None:
        self.transport = transport
        self.loop = loop
        self.sock_fd = sock_fd
        self.file_fd = file_fd
        self.offset = offset
        self.remaining = count
        self.sent = 0
        self.future = future
        self.progress = progress
        self.watch_fd = -1
        self.close_after = False

    def run(self) -> None:
        """Send what the socket takes now (up to a turn's worth); wait for writability for the rest."""
        import errno
        import os

        if self.transport._sendfile is not self:
            return
        if self.transport._t.get_write_buffer_size():
            self._watch()  # what was written before goes first
            return
        budget = SENDFILE_TURN
        while self.remaining > 0:
            try:
                n = os.sendfile(self.sock_fd, self.file_fd, self.offset, min(self.remaining, SENDFILE_CHUNK))
            except (BlockingIOError, InterruptedError):
                self._watch()
                return
            except OSError as e:
                peer_gone = e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                                        errno.ECONNABORTED, errno.ETIMEDOUT)
                self._finish(abort=peer_gone)
                return
            if n == 0:  # the end of the file came before ``count`` bytes
                break
            self.offset += n
            self.remaining -= n
            self.sent += n
            if self.progress is not None:
                try:
                    self.progress(n)
                except Exception:
                    import logging

                    logging.getLogger("tapster.core").exception("sendfile progress callback failed")
                    self._finish(abort=True)
                    return
                if self.transport._sendfile is not self:
                    return  # progress stopped the connection
            budget -= n
            if budget <= 0 and self.remaining > 0:
                self._watch()  # let the other connections have their turn
                return
        self._finish()

    def _watch(self) -> None:
        if self.watch_fd < 0:
            import os

            try:
                self.watch_fd = os.dup(self.sock_fd)
                self.loop.add_writer(self.watch_fd, self.run)
            except (OSError, RuntimeError, ValueError):
                self._finish(abort=True)

    def _unwatch(self) -> None:
        fd, self.watch_fd = self.watch_fd, -1
        if fd >= 0:
            import os

            try:
                self.loop.remove_writer(fd)
            finally:
                os.close(fd)

    def stop(self) -> None:
        """The connection is going away: stop now (the future gets what was sent)."""
        self._finish()

    def _finish(self, abort: bool = False) -> None:
        transport = self.transport
        if transport._sendfile is not self:
            return
        transport._sendfile = None
        self._unwatch()
        if not self.future.done():
            self.future.set_result(self.sent)
        if abort:
            transport.abortConnection()
        elif self.close_after and not transport._t.is_closing():
            transport._t.close()


def attach(
    protocol: Protocol,
    aio_transport: asyncio.BaseTransport,
    kind: str = "TCP",
    connector: IConnector | None = None,
    lost_hook: Callable[[Failure], None] | None = None,
) -> Transport:
    """Wrap ``aio_transport`` and hand it to ``protocol.makeConnection``."""
    # Every stream transport asyncio hands a protocol is a read-write one.
    transport = Transport(cast("asyncio.Transport", aio_transport), protocol, kind, connector, lost_hook)
    protocol.makeConnection(transport)
    return transport
