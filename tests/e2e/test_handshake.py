"""The opening handshake of chat-cli, from outside (RFC 6455 section 4, RFC 7230).

An accepted upgrade gets 101 with the right Sec-WebSocket-Accept on any path;
every refusal is an HTTP status and the server closes the connection after it.
Each test sends raw bytes, so the exact request is in the test.
"""
import socket
import time

import pytest

import wsraw
from wsraw import OP_TEXT, RFC_ACCEPT, RFC_KEY, RawWS, http_exchange, upgrade_request


@pytest.fixture
def server(start_server):
    s = start_server("--echo")
    yield s
    assert s.alive(), "chat-cli died during the test"


def exchange(server, request, **kw):
    return http_exchange(server.host, server.port, request, **kw)


def hostport(server):
    return "%s:%d" % (server.host, server.port)


def req(server, **kw):
    return upgrade_request(hostport(server), **kw)


def assert_refused(resp, status):
    assert resp.status == status, "expected HTTP %d, got %r" % (status, resp.raw[:300])
    assert resp.closed, "the server must close the connection after a %d" % status
    assert b"sec-websocket-accept" not in resp.raw.lower()


def assert_upgraded(server, request, key=RFC_KEY, accept=RFC_ACCEPT, chunk=None, delay=0.0):
    """Send request on a fresh socket, check the 101 head, then check that the
    connection really speaks WebSocket (an echo round trip).  Returns the headers."""
    with RawWS(server.host, server.port, timeout=3) as ws:
        headers = ws.handshake(request=request, key=key, chunk=chunk, delay=delay)
        head = ws.response_head
        assert headers["sec-websocket-accept"] == [accept], head
        assert [v.lower() for v in headers["upgrade"]] == ["websocket"], head
        assert "upgrade" in [t.strip().lower() for v in headers["connection"] for t in v.split(",")], head
        assert bytes(ws.buf) == b"", "bytes after the 101 head: %r" % bytes(ws.buf)
        ws.send_text(b"after upgrade")
        assert ws.recv_message() == (OP_TEXT, b"after upgrade")
        return headers


# --- accepted ---------------------------------------------------------------

def test_rfc_example_key_gets_rfc_example_accept(server):
    assert_upgraded(server, req(server, key=RFC_KEY))


@pytest.mark.parametrize("path", ["/", "/chat", "/rooms/lobby?name=ann&x=1", "/healthz/not-really", "/%7Euser"])
def test_upgrade_accepted_on_any_path(server, path):
    assert_upgraded(server, req(server, path=path, key=RFC_KEY))


def test_random_key(server):
    key = wsraw.new_key()
    assert_upgraded(server, req(server, key=key), key=key, accept=wsraw.accept_for(key))


def test_header_names_and_tokens_are_case_insensitive(server):
    request = (b"GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: upgrade\r\n"
               b"sec-websocket-key: " + RFC_KEY.encode() + b"\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n")
    assert_upgraded(server, request)


def test_connection_token_list_like_firefox(server):
    # Firefox sends "Connection: keep-alive, Upgrade".
    assert_upgraded(server, req(server, key=RFC_KEY, replace={"Connection": "keep-alive, Upgrade"}))


def test_optional_whitespace_around_header_values(server):
    request = (b"GET / HTTP/1.1\r\nHost:x\r\nUpgrade: \t websocket \t\r\nConnection:Upgrade\r\n"
               b"Sec-WebSocket-Key: \t" + RFC_KEY.encode() + b" \t\r\nSec-WebSocket-Version:  13\r\n\r\n")
    assert_upgraded(server, request)


def test_extra_headers_ignored(server):
    extra = [("User-Agent", "wsraw/1"), ("Origin", "http://example.com"), ("Cookie", "a=b; c=d"),
             ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
             ("Sec-WebSocket-Protocol", "chat, superchat"), ("X-Empty", "")]
    headers = assert_upgraded(server, req(server, key=RFC_KEY, extra=extra))
    # Whatever is negotiated must be among what was offered (RFC 6455 4.2.2 /subprotocol/, 9.1).
    for value in headers.get("sec-websocket-protocol", []):
        assert value in ("chat", "superchat"), headers
    for value in headers.get("sec-websocket-extensions", []):
        assert value.split(";")[0].strip() == "permessage-deflate", headers


def test_request_sent_one_byte_at_a_time(server):
    assert_upgraded(server, req(server, key=RFC_KEY), chunk=1, delay=0.001)


@pytest.mark.parametrize("chunk", [2, 3, 7, 13, 64])
def test_request_in_awkward_chunks(server, chunk):
    assert_upgraded(server, req(server, key=RFC_KEY), chunk=chunk, delay=0.002)


@pytest.mark.parametrize("chunk", [None, 7, 1])
def test_first_frames_in_the_same_write_as_the_request(server, chunk):
    # Bytes right behind the \r\n\r\n belong to the WebSocket stream: they
    # must not be lost, wherever the read boundaries fall.
    with RawWS(server.host, server.port, timeout=3) as ws:
        frames = wsraw.encode_frame(OP_TEXT, b"one") + wsraw.encode_frame(OP_TEXT, b"two")
        ws.handshake(extra_bytes=frames, chunk=chunk, delay=0.0005 if chunk else 0)
        assert ws.recv_message() == (OP_TEXT, b"one")
        assert ws.recv_message() == (OP_TEXT, b"two")


@pytest.mark.parametrize("size,status", [(2047, 101), (2048, 101), (2049, 431)])
def test_max_header_boundary(start_server, size, status):
    # --max-header counts the whole request head, request line and final CRLF included.
    s = start_server("--echo", "--max-header", "2048")
    hp = "%s:%d" % (s.host, s.port)
    filler = size - len(upgrade_request(hp, key=RFC_KEY)) - len("X-Fill: \r\n")
    request = upgrade_request(hp, key=RFC_KEY, extra=[("X-Fill", "a" * filler)])
    assert len(request) == size
    if status == 101:
        assert_upgraded(s, request)
    else:
        assert_refused(http_exchange(s.host, s.port, request), status)


def test_absolute_form_request_target(server):
    # RFC 7230 5.3.2: a server MUST accept the absolute form.
    request = req(server, key=RFC_KEY, path="http://%s/chat" % hostport(server))
    assert_upgraded(server, request)


def test_the_websockets_library_connects(server):
    import asyncio
    import websockets

    async def go():
        async with websockets.connect(server.url, open_timeout=3, close_timeout=2, ping_interval=None) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 3) == "hi"

    asyncio.run(asyncio.wait_for(go(), 8))


# --- refused ----------------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\nUpgrade: websocket\r\n\r\n",          # header without colon
    b"GET / HTTP/1.1\r\n: novalue\r\nHost: x\r\n\r\n",                  # empty header name
    b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",                              # space in a header name
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # a TLS ClientHello
], ids=["garbage", "method-only", "no-version", "no-colon", "empty-name", "space-in-name", "tls"])
def test_malformed_request_400(server, request_bytes):
    assert_refused(exchange(server, request_bytes), 400)


def test_missing_key_400(server):
    assert_refused(exchange(server, req(server, drop=["Sec-WebSocket-Key"])), 400)


@pytest.mark.parametrize("key", ["", "abc", "not base64 at all!!", "AAAAAAAAAAAAAAAAAAAAAA==" + "AAAA",
                                 "AAAAAAAAAAAAAAAAAAAA",        # 15 bytes
                                 "AAAAAAAAAAAAAAAAAAAAAAAA"],   # 18 bytes
                         ids=["empty", "short", "not-base64", "too-long", "15-bytes", "18-bytes"])
def test_invalid_key_400(server, key):
    assert_refused(exchange(server, req(server, key=key)), 400)


def test_two_different_keys_400(server):
    # RFC 6455 11.3.1: Sec-WebSocket-Key MUST NOT appear more than once.
    assert_refused(exchange(server, req(server, extra=[("Sec-WebSocket-Key", wsraw.new_key())])), 400)


def test_two_host_headers_400(server):
    # RFC 7230 5.4: a server MUST answer 400 to a request with more than one Host.
    assert_refused(exchange(server, req(server, extra=[("Host", "other.example:80")])), 400)


def test_missing_host_400(server):
    assert_refused(exchange(server, req(server, drop=["Host"])), 400)


@pytest.mark.parametrize("value", ["keep-alive", "close", "upgraded", ""])
def test_connection_without_upgrade_token_400(server, value):
    assert_refused(exchange(server, req(server, replace={"Connection": value})), 400)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_non_get_405(server, method):
    resp = exchange(server, req(server, method=method))
    assert_refused(resp, 405)


def test_http_1_0_is_505(server):
    assert_refused(exchange(server, req(server, http="HTTP/1.0")), 505)


@pytest.mark.parametrize("version", ["8", "12", "14", "thirteen"])
def test_wrong_version_426_with_version_header(server, version):
    resp = exchange(server, req(server, replace={"Sec-WebSocket-Version": version}))
    assert_refused(resp, 426)
    assert resp.headers.get("sec-websocket-version") == ["13"], resp.raw


def test_missing_version_refused(server):
    # RFC 6455 4.2.1 makes the header mandatory; either answer is a refusal.
    resp = exchange(server, req(server, drop=["Sec-WebSocket-Version"]))
    assert resp.status in (400, 426), resp.raw
    assert resp.closed


def test_header_over_max_header_431(start_server):
    s = start_server("--echo", "--max-header", "1024")
    request = upgrade_request("%s:%d" % (s.host, s.port), extra=[("X-Fill", "a" * 1100)])
    assert_refused(http_exchange(s.host, s.port, request), 431)


def test_header_over_default_max_header_431(server):
    request = req(server, extra=[("X-Fill-%d" % i, "b" * 90) for i in range(100)])
    assert len(request) > 8192
    assert_refused(exchange(server, request), 431)


def test_endless_header_without_blank_line_431(start_server):
    # Never sends \r\n\r\n: the server must stop reading at --max-header, not buffer forever.
    s = start_server("--echo", "--max-header", "1024")
    sock = wsraw.connect_tcp(s.host, s.port, 3)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(64):
                sock.sendall(b"X-A: " + b"c" * 100 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw, closed = wsraw.read_until_eof(sock, 3)
    finally:
        sock.close()
    assert closed
    assert raw.startswith(b"HTTP/1.1 431"), raw[:200]


def test_plain_get_root_426(server):
    resp = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_refused(resp, 426)


def test_plain_get_unknown_path_404(server):
    assert_refused(exchange(server, b"GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n"), 404)


def test_healthz_200(server):
    resp = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 200, resp.raw
    assert resp.closed
    if "content-length" in resp.headers:
        assert int(resp.headers["content-length"][0]) == len(resp.body)


def test_healthz_stays_healthy_under_repeated_requests(server):
    for _ in range(50):
        assert exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status == 200


def test_refusals_leave_server_working(server):
    for bad in (b"garbage\r\n\r\n", req(server, method="POST"), req(server, http="HTTP/1.0")):
        exchange(server, bad)
    assert_upgraded(server, req(server, key=RFC_KEY))


def test_refused_response_is_well_formed(server):
    resp = exchange(server, req(server, drop=["Sec-WebSocket-Key"]))
    assert resp.raw.startswith(b"HTTP/1.1 400 "), resp.raw[:100]
    # A client must be able to find the end of the body: length given or connection closed.
    if "content-length" in resp.headers:
        assert int(resp.headers["content-length"][0]) == len(resp.body)
    assert resp.closed


def test_client_closing_mid_request_leaves_server_working(server):
    sock = wsraw.connect_tcp(server.host, server.port, 2)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpg")
    sock.close()
    sock = wsraw.connect_tcp(server.host, server.port, 2)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpg")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    time.sleep(0.05)
    assert_upgraded(server, req(server, key=RFC_KEY))
