"""wsraw: a tiny raw-socket WebSocket client for protocol edge cases (RFC 6455).

A polite library refuses to send a broken frame; this one sends whatever it is
told: any opcode, any RSV bits, FIN or not, masked or not, a forced length
encoding, and any chunking of the bytes on the wire (one byte per write, as
wslay's own tests do).  It reads frames exactly as the server wrote them, so
tests can assert the bytes, the FIN bits and the close code.

Every read is bounded: each call takes a timeout (default: the client's), and
a read that runs out of time raises socket.timeout.  TCP end of stream while a
frame is expected raises ConnectionClosed.

Nothing here knows about chat-cli; tests/e2e/conftest.py starts the servers.
"""
import base64
import hashlib
import os
import socket
import struct
import time
from collections import namedtuple

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# The key and answer given as the example in RFC 6455, section 1.3.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


class ConnectionClosed(Exception):
    """The server ended the TCP stream (FIN or RST) while we expected bytes."""


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455, 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def apply_mask(data, key):
    """XOR data with the 4-byte key; fast for megabytes (big-int XOR in C)."""
    n = len(data)
    if n == 0:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None):
    """Bytes of one frame.  rsv is the 3-bit value (4 = RSV1, 2 = RSV2, 1 = RSV3).

    The length always uses the minimal encoding; opcode and rsv are not
    checked, so reserved values go on the wire as given.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + apply_mask(payload, key)


def close_payload(code=None, reason=b""):
    """Payload of a close frame: empty when code is None."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is None:
        return b"" + reason
    return struct.pack("!H", code) + reason


class Frame(namedtuple("Frame", "fin rsv opcode masked payload length_bytes")):
    """One frame as read.  length_bytes: 0, 2 or 8, the extended length used."""

    @property
    def close_code(self):
        assert self.opcode == OP_CLOSE, "not a close frame: %r" % (self,)
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        assert self.opcode == OP_CLOSE
        return self.payload[2:]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"...(%d bytes)" % len(self.payload)
        return "Frame(fin=%d rsv=%d opcode=0x%X masked=%d payload=%r)" % (
            self.fin, self.rsv, self.opcode, self.masked, p)


def is_minimal_length(frame):
    n = len(frame.payload)
    return frame.length_bytes == (0 if n < 126 else 2 if n <= 0xFFFF else 8)


def upgrade_request(hostport, path="/", method="GET", http="HTTP/1.1", key=None,
                    drop=(), replace=None, extra=()):
    """A client opening handshake as bytes.

    drop: header names (any case) to leave out; replace: {name: value} to
    change a default header's value; extra: (name, value) pairs appended.
    """
    headers = [
        ("Host", hostport),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key if key is not None else new_key()),
        ("Sec-WebSocket-Version", "13"),
    ]
    drop = {d.lower() for d in drop}
    replace = {k.lower(): v for k, v in (replace or {}).items()}
    lines = ["%s %s %s" % (method, path, http)]
    for name, value in headers:
        if name.lower() in drop:
            continue
        lines.append("%s: %s" % (name, replace.get(name.lower(), value)))
    for name, value in extra:
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


HttpResponse = namedtuple("HttpResponse", "status reason headers body closed raw")


def parse_http_head(raw):
    """(status, reason, headers) of an HTTP response head; headers: lower name -> list of values."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise AssertionError("not an HTTP status line: %r" % lines[0])
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        assert sep, "malformed response header line %r" % line
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, reason, headers


def connect_tcp(host, port, timeout=5.0, rcvbuf=None, source=None):
    """source: the local address to connect from (e.g. "127.0.0.2")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if source is not None:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf is not None:
        # Before connect, so the window the server sees is small from the start.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, port))
    return s


def send_chunked(sock, data, chunk=None, delay=0.0):
    """sendall, or in pieces of `chunk` bytes with `delay` seconds between them."""
    if not chunk:
        sock.sendall(data)
        return
    for i in range(0, len(data), chunk):
        sock.sendall(data[i:i + chunk])
        if delay:
            time.sleep(delay)


def read_until_eof(sock, timeout):
    """All bytes until the peer ends the stream -> (data, closed).

    closed is False when the timeout ran out first; a reset counts as closed.
    """
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)


def http_exchange(host, port, request, timeout=3.0, chunk=None, delay=0.0):
    """Send a raw HTTP request and read the response up to the server's close.

    Returns HttpResponse; closed tells whether the server ended the stream
    within the timeout (every non-101 answer must close the connection).
    """
    s = connect_tcp(host, port, timeout)
    try:
        send_chunked(s, request, chunk, delay)
        raw, closed = read_until_eof(s, timeout)
    finally:
        s.close()
    if b"\r\n\r\n" not in raw:
        raise AssertionError("no complete HTTP response head (closed=%s): %r" % (closed, raw[:300]))
    status, reason, headers = parse_http_head(raw)
    body = raw.split(b"\r\n\r\n", 1)[1]
    return HttpResponse(status, reason, headers, body, closed, raw)


class RawWS:
    """One raw WebSocket connection.  Use RawWS.open(...) for a finished handshake.

    The socket keeps TCP_NODELAY so that each send() leaves as its own segment.
    """

    def __init__(self, host, port, timeout=5.0, rcvbuf=None, source=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = connect_tcp(host, port, timeout, rcvbuf, source)
        self.buf = bytearray()
        self.response_head = None

    @classmethod
    def open(cls, server_or_host, port=None, path="/", timeout=5.0, rcvbuf=None, chunk=None, delay=0.0,
             source=None):
        """Connect and finish the opening handshake (asserting a correct 101)."""
        if port is None:
            host, port = server_or_host.host, server_or_host.port
        else:
            host = server_or_host
        ws = cls(host, port, timeout, rcvbuf, source)
        try:
            ws.handshake(path, chunk=chunk, delay=delay)
        except BaseException:
            ws.close()
            raise
        return ws

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- opening handshake -------------------------------------------------

    def hostport(self):
        return "[%s]:%d" % (self.host, self.port) if ":" in self.host else "%s:%d" % (self.host, self.port)

    def handshake(self, path="/", chunk=None, delay=0.0, extra_bytes=b"", request=None, key=None):
        """Send an upgrade request (plus extra_bytes right behind it), check the
        101 and its Sec-WebSocket-Accept, and return the response headers.
        request/key: send this exact request, made with this key."""
        if request is None:
            key = new_key()
            request = upgrade_request(self.hostport(), path=path, key=key)
        self.send(request + extra_bytes, chunk, delay)
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        self.response_head = head
        status, _, headers = parse_http_head(head + b"\r\n\r\n")
        assert status == 101, "expected 101, got %r" % head
        assert headers.get("sec-websocket-accept") == [accept_for(key)], head
        return headers

    # --- sending -----------------------------------------------------------

    def send(self, data, chunk=None, delay=0.0):
        send_chunked(self.sock, data, chunk, delay)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, chunk=None, delay=0.0):
        self.send(encode_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask), chunk, delay)

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    # --- receiving ---------------------------------------------------------

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionClosed("connection reset: %s (buffered %d bytes)" % (e, len(self.buf)))
        if not data:
            raise ConnectionClosed("server closed the TCP stream (buffered %d bytes: %r)"
                                   % (len(self.buf), bytes(self.buf[:60])))
        self.buf += data

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_frame(self, timeout=None):
        """The next frame, exactly as sent (payload unmasked if it was masked)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        b0, b1 = self._take(2, deadline)
        n = b1 & 0x7F
        length_bytes = 0
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
            length_bytes = 2
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
            length_bytes = 8
        masked = bool(b1 & 0x80)
        key = self._take(4, deadline) if masked else None
        payload = self._take(n, deadline)
        if masked:
            payload = apply_mask(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload, length_bytes)

    def recv_message(self, timeout=None, frames=None):
        """The next data message -> (opcode, payload), reassembling fragments.

        Any control frame on the way is an AssertionError (these tests say
        exactly which frames they expect).  If frames is a list, every frame
        read is appended to it.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        first = None
        parts = []
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if frames is not None:
                frames.append(f)
            assert not f.masked, "server frame is masked: %r" % (f,)
            assert f.rsv == 0, "server frame has RSV bits: %r" % (f,)
            assert f.opcode in (OP_CONT, OP_TEXT, OP_BINARY), "expected a data frame, got %r" % (f,)
            if first is None:
                assert f.opcode != OP_CONT, "message starts with a continuation frame: %r" % (f,)
                first = f.opcode
            else:
                assert f.opcode == OP_CONT, "new data frame inside a fragmented message: %r" % (f,)
            parts.append(f.payload)
            if f.fin:
                return first, b"".join(parts)

    def expect_close(self, code, timeout=None, reply=True):
        """Assert that the next frame is a close with `code` (None: empty payload;
        a tuple: any of these),
        answer it (unless reply=False) and assert the server then ends the TCP stream.
        Returns the close frame."""
        f = self.recv_frame(timeout)
        assert f.opcode == OP_CLOSE, "expected close %s, got %r" % (code, f)
        assert not f.masked and f.rsv == 0 and f.fin, f
        codes = code if isinstance(code, tuple) else (code,)
        assert f.close_code in codes, "expected close code %s, got %s (%r)" % (code, f.close_code, f)
        if f.payload[2:]:
            f.payload[2:].decode("utf-8")  # a close reason must be UTF-8
        if reply:
            try:
                self.send_frame(OP_CLOSE, f.payload[:2])
            except OSError:
                pass  # the server may already have closed: that is fine
        assert self.wait_eof(timeout if timeout is not None else self.timeout), \
            "server sent close %s but did not close the TCP connection" % code
        return f

    def wait_eof(self, timeout=None):
        """True when the server ends the stream (FIN or RST) within the timeout;
        bytes still arriving are discarded."""
        self.buf.clear()
        data, closed = read_until_eof(self.sock, self.timeout if timeout is None else timeout)
        return closed

    def recv_nothing(self, seconds):
        """Assert that no byte arrives for `seconds` (and the stream stays open)."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return
        raise AssertionError("expected silence, got %r (buffer %r)" % (data, bytes(self.buf[:40])))

    # --- ending ------------------------------------------------------------

    def abort(self):
        """Close with an RST (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
