"""TLS (issue 12): chat-cli --tls-cert/--tls-key/--tls-ca against real
clients: Python websockets and http.client over ssl, raw sockets for the
bad input, `openssl s_client` for a TLS 1.2 renegotiation, and a headless
Chromium loading the page over https:// and chatting over wss://. The
certificates are made at test time (tlscerts.py)."""
import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import websockets

import tlscerts
from browser import CHROMIUM
from chatclient import TIMEOUT, Clients, assert_clean_exit, run, say
from conftest import without_flood_control
from jsonclient import Pool, check_event
from memcheck import SCALE
from wsutil import echo_latencies


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tlscerts.make(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def tls_server(start_server, certs):
    """start_server with --tls-cert/--tls-key (and flood control off); the
    server's .ssl trusts the test CA (and presents a good client
    certificate when client=True)."""
    start = without_flood_control(start_server)

    def _start(*args, cert=None, key=None, client=False):
        s = start("--tls-cert", cert or certs.cert, "--tls-key", key or certs.key, *args)
        assert s.url.startswith("wss://"), s.url
        s.ssl = tlscerts.client_context(certs, certs.client if client else None)
        s.certs = certs
        return s
    return _start


def fetch(server, path="/", ctx=None, method="GET"):
    """(status, headers, body) of one request over https."""
    c = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx or server.ssl, timeout=5 * SCALE)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def metrics(server, ctx=None):
    status, _, body = fetch(server, "/metrics", ctx)
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def failures(server, reason, ctx=None):
    return metrics(server, ctx)['wschat_tls_handshake_failures_total{reason="%s"}' % reason]


def wait_until(cond, what, timeout=5.0):
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("never happened: " + what)


def closed_by_server(sock, timeout=5.0):
    """Reads until the server closes; returns what came (EOF or reset)."""
    sock.settimeout(timeout * SCALE)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        return data


# ---- the chat over wss:// ----

def test_chat_over_wss_in_text_and_json(tls_server):
    s = tls_server()

    async def body():
        async with Pool(s) as p:
            alice, bob = await p.room(["alice", "bob"])
            await say(alice, "hello over TLS", bob)
            carol = await p.jjoin("carol", history=False)
            await alice.expect("* carol joined #lobby")
            await bob.expect("* carol joined #lobby")
            await carol.send({"type": "message", "text": "json over TLS"})
            check_event(await carol.recv_obj(), "message", room="lobby", **{"from": "carol"}, text="json over TLS")
            await alice.expect("[lobby] carol: json over TLS")
            await bob.send("back to you")
            check_event(await carol.recv_obj(), "message", room="lobby", **{"from": "bob"}, text="back to you")
    run(body())
    assert metrics(s)["wschat_tls_handshakes_total"] >= 4
    assert_clean_exit(s)


def test_large_messages_and_many_in_one_turn(tls_server):
    """A message of many TLS records each way, and a burst of 300 lines that
    the server writes in few turns: all arrive, whole and in order."""
    s = tls_server("--max-message", "4000000", "--max-line", "600000")

    async def body():
        async with Clients(s) as c:
            alice, bob = await c.room(["alice", "bob"])
            big = "".join(chr(0x41 + i % 26) for i in range(500000))
            await say(alice, big, bob)
            lines = ["line %d %s" % (i, "x" * (i % 97)) for i in range(300)]
            await asyncio.gather(*(alice.send(line) for line in lines))
            for line in lines:
                assert await bob.recv() == "[lobby] alice: " + line
                assert await alice.recv() == "[lobby] alice: " + line
    run(body(), s)


def test_echo_mode_over_tls(tls_server):
    s = tls_server("--echo")

    async def body():
        ctx = s.ssl
        async with websockets.connect(s.url, ssl=ctx, max_size=None) as ws:
            await ws.send("ping over tls")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ping over tls"
            blob = os.urandom(100000)
            await ws.send(blob)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == blob
    run(body(), s)


def test_https_page_alpn_and_versions(tls_server, certs):
    s = tls_server()
    status, headers, page = fetch(s, "/")
    assert status == 200 and headers["content-type"].startswith("text/html"), headers
    assert b"<html" in page.lower()
    # The page builds its socket URL from location.protocol: wss:// on https.
    assert b"app.js" in page
    status, _, js = fetch(s, "/app.js")
    assert status == 200 and b'location.protocol === "https:" ? "wss:" : "ws:"' in js
    # ALPN: http/1.1 chosen among a browser's offers; none when not offered.
    for offer, want in ((["h2", "http/1.1"], "http/1.1"), (None, None)):
        ctx = tlscerts.client_context(certs)
        if offer:
            ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == want
                assert tls.version() == "TLSv1.3"
    # TLS 1.2 is served; anything older is not.
    ctx = tlscerts.client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"
    # An old client (one that would speak TLS 1.1: the security level lowered
    # so that OpenSSL offers it) gets no handshake, and it is counted.
    before = failures(s, "protocol")
    proc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port, "-tls1_1",
                           "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", certs.ca], input=b"",
                          capture_output=True, timeout=10)
    assert proc.returncode != 0 and b"CONNECTED" in proc.stdout, proc.stdout[-500:]
    wait_until(lambda: failures(s, "protocol") == before + 1, "the TLS 1.1 attempt counted")


def test_tls12_only_aead_ciphers_with_forward_secrecy(tls_server, certs):
    """TLS 1.2 offers ECDHE with AES-GCM or ChaCha20-Poly1305 only: a client
    that offers nothing but CBC suites (SHA-1 or SHA-384 MACs: OpenSSL's
    defaults allow them) gets no handshake (reason="protocol")."""
    s = tls_server()
    tls12 = dict(minimum_version=ssl.TLSVersion.TLSv1_2, maximum_version=ssl.TLSVersion.TLSv1_2)
    for ok in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        ctx = tlscerts.client_context(certs, **tls12)
        ctx.set_ciphers(ok)
        assert fetch(s, "/healthz", ctx)[0] == 200, ok
    before = failures(s, "protocol")
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        ctx = tlscerts.client_context(certs, **tls12)
        ctx.set_ciphers(weak)
        with pytest.raises(ssl.SSLError):
            fetch(s, "/healthz", ctx)
    wait_until(lambda: failures(s, "protocol") == before + 2, "the two refusals counted")
    assert_clean_exit(s)


# ---- bad input ----

def test_plain_http_and_garbage_are_closed_and_others_unaffected(tls_server):
    s = tls_server()

    async def body():
        async with Clients(s) as c:
            alice, bob = await c.room(["alice", "bob"])
            # A plain HTTP request on the TLS port: a plain 400 and a close.
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = closed_by_server(raw)
            assert got == b"" or got.startswith(b"HTTP/1.1 400 "), got[:200]
            assert b"https://" in got or got == b""
            # Garbage: closed (with an alert at most).
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
                raw.sendall(bytes(range(256)) * 4)
                got = closed_by_server(raw)
            assert len(got) < 64 and (got == b"" or got[0] == 0x15), got  # nothing, or one alert record
            await say(alice, "still here", bob)
    run(body())
    assert failures(s, "http") == 1
    assert failures(s, "protocol") == 1
    assert "tls_handshake_failed" in s.stderr_text()
    assert_clean_exit(s)


def test_stalled_handshakes_are_closed_at_the_timeout(tls_server):
    s = tls_server("--handshake-timeout", "1")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", s.port)) as silent, \
            socket.create_connection(("127.0.0.1", s.port)) as half:
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello begun
        assert closed_by_server(silent, timeout=6) == b""
        closed_by_server(half, timeout=6)
    took = time.monotonic() - started
    assert 0.9 <= took < 5 * SCALE, took
    assert failures(s, "timeout") == 2
    assert_clean_exit(s)


def test_renegotiation_is_refused_and_closes(tls_server, certs):
    s = tls_server()
    proc = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port, "-tls1_2",
                             "-CAfile", certs.ca, "-servername", "localhost"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: metrics(s)["wschat_tls_handshakes_total"] >= 1, "s_client's handshake")
        proc.stdin.write(b"R\n")  # s_client: renegotiate
        proc.stdin.flush()
        wait_until(lambda: metrics(s)["wschat_tls_renegotiations_refused_total"] == 1, "the refusal counted")
        # The server closed: s_client ends although its stdin is still open.
        proc.wait(timeout=5 * SCALE)
        out = proc.stdout.read().decode(errors="replace")
        assert "RENEGOTIATING" in out, out[-1000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert "renegotiation" in s.stderr_text()
    assert_clean_exit(s)


def test_slow_consumer_over_tls_is_closed_and_others_unaffected(tls_server):
    """A TLS client that sends and never reads: what the server holds for it
    stays bounded (its queue under --max-output, the ciphertext under one
    step), it is closed 1008, and a bystander's echoes stay quick."""
    import base64
    import threading
    from chatclient import RawClient
    s = tls_server("--echo", "--max-output", "65536")
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    victim = s.ssl.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    victim.sendall(("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += victim.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    victim.settimeout(0.5)
    chunk = RawClient.frame(0x2, b"\xab" * 65536)
    state = {}

    def flood():
        try:
            for _ in range(256):  # 16 MiB, never reading
                victim.sendall(chunk)
            state["stop"] = "sent everything"
        except (socket.timeout, ssl.SSLError, OSError) as e:
            state["stop"] = repr(e)

    th = threading.Thread(target=flood, daemon=True)
    latencies = []

    async def bystander():
        async with websockets.connect(s.url, ssl=s.ssl) as ws:
            th.start()
            latencies.extend(await echo_latencies(ws, th.is_alive))
            await asyncio.get_running_loop().run_in_executor(None, th.join, 10)
    try:
        run(bystander())
        assert max(latencies) < 0.5 * SCALE, "the other client was slowed: %r" % max(latencies)
        wait_until(lambda: metrics(s)["wschat_slow_consumer_closes_total"] == 1, "the slow consumer closed")
    finally:
        victim.close()
    assert "stop" in state, state
    assert_clean_exit(s)


def test_tls13_key_update_is_not_renegotiation(tls_server, certs):
    """A TLS 1.3 KeyUpdate (s_client's K: the peer must update too) is
    answered, and the connection goes on to a request."""
    s = tls_server()
    proc = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port, "-tls1_3",
                             "-CAfile", certs.ca, "-servername", "localhost"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    import threading
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    said = lambda text: any(text in l.decode(errors="replace") for l in list(lines))  # noqa: E731
    try:
        wait_until(lambda: said("Verify return code"), "s_client's handshake")
        time.sleep(0.3)  # s_client reads its tickets before it reads stdin
        proc.stdin.write(b"K\n")
        proc.stdin.flush()
        wait_until(lambda: said("KEYUPDATE"), "s_client's KeyUpdate")
        time.sleep(0.3)
        proc.stdin.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        proc.stdin.flush()
        wait_until(lambda: said("HTTP/1.1 200 OK"), "the answer after the KeyUpdate")
        proc.wait(timeout=5 * SCALE)  # the server closed (Connection: close)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        proc.stdin.close()
        proc.stdout.close()
    out = b"".join(lines).decode(errors="replace")
    assert "KEYUPDATE" in out and "HTTP/1.1 200 OK" in out, out[-1500:]
    assert metrics(s)["wschat_tls_renegotiations_refused_total"] == 0
    assert_clean_exit(s)


def test_peer_reset_right_after_its_finished_is_eof_not_timeout(tls_server):
    """A client that sends its last handshake flight and resets at once: the
    server's answer to it (TLS 1.3 tickets, TLS 1.2 Finished) meets the
    reset. The peer went away: counted as eof (or as a handshake if the
    answer got out first), never as a timeout, which means a stall."""
    import struct
    s = tls_server()
    n = 0
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3) * 3:
        ctx = tlscerts.client_context(s.certs, minimum_version=version, maximum_version=version)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with socket.create_connection(("127.0.0.1", s.port), timeout=5 * SCALE) as raw:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    incoming.write(raw.recv(65536))
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.sendall(outgoing.read())  # the client's Finished, then the reset
        n += 1
    # Every attempt closed (the one open connection is this request's).
    wait_until(lambda: metrics(s)['wschat_connections{state="http"}'] == 1, "every attempt closed")
    m = metrics(s)
    assert m['wschat_tls_handshake_failures_total{reason="timeout"}'] == 0, m
    assert m['wschat_tls_handshake_failures_total{reason="eof"}'] <= n, m
    assert "reason=timeout" not in s.stderr_text()
    assert_clean_exit(s)


def test_resumption_without_early_data(tls_server, certs, tmp_path):
    """A TLS 1.3 session resumes from its ticket, and the ticket allows no
    0-RTT data (replayable: the server must never act on it)."""
    s = tls_server()
    sess, early = str(tmp_path / "sess.pem"), str(tmp_path / "early.txt")
    with open(early, "wb") as f:
        f.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port, "-tls1_3", "-CAfile", certs.ca,
            "-servername", "localhost"]
    # The first connection stays open a moment: the tickets come after the handshake.
    first = subprocess.Popen(base + ["-sess_out", sess], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: os.path.exists(sess) and os.path.getsize(sess) > 0, "a session ticket")
        time.sleep(0.2)
    finally:
        first.stdin.close()
        first.wait(timeout=5 * SCALE)
        first.stdout.close()
    ticket = subprocess.run(["openssl", "sess_id", "-in", sess, "-text", "-noout"], capture_output=True,
                            text=True, timeout=10).stdout
    assert re.search(r"Max Early Data: 0\b", ticket), ticket
    second = subprocess.run(base + ["-sess_in", sess, "-early_data", early], input=b"", capture_output=True,
                            timeout=10 * SCALE)
    out = second.stdout.decode(errors="replace")
    assert "Reused, TLSv1.3" in out, out[-1500:]
    assert "Early data was accepted" not in out and "HTTP/1.1 200" not in out, out[-1500:]
    assert_clean_exit(s)


# ---- client certificates ----

def tls_request(port, ctx):
    """GET /healthz over a fresh TLS connection; the status line, or the
    exception the refusal raised (in the handshake or at the first read:
    a TLS 1.3 server checks the client's certificate after its own
    Finished)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = closed_by_server(tls)
                return data.split(b"\r\n", 1)[0] if data else "closed"
    except (ssl.SSLError, ConnectionError) as e:
        return e


def test_client_certificates_with_tls_ca(tls_server, certs):
    s = tls_server("--tls-ca", certs.ca, client=True)
    good = tlscerts.client_context(certs, certs.client)
    assert tls_request(s.port, good) == b"HTTP/1.1 200 OK"
    for who in (None, certs.expired, certs.stranger):
        got = tls_request(s.port, tlscerts.client_context(certs, who))
        assert not isinstance(got, bytes), "%s was served: %r" % (who, got)

    async def body():
        async with Clients(s) as c:  # s.ssl presents the good certificate
            alice, bob = await c.room(["alice", "bob"])
            await say(alice, "certified", bob)
    run(body())
    assert failures(s, "client_cert", good) == 3
    text = s.stderr_text()
    assert "certificate has expired" in text, text[-2000:]
    assert_clean_exit(s)


# ---- SIGHUP: a new certificate without dropping anyone ----

def serial_seen(port, certs):
    ctx = tlscerts.client_context(certs)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)


def test_sighup_reloads_the_certificate(tls_server, certs, tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(certs.cert, cert)
    shutil.copy(certs.key, key)
    s = tls_server(cert=cert, key=key)
    assert serial_seen(s.port, certs) == tlscerts.SERIAL

    async def body():
        async with Clients(s) as c:
            alice = await c.join("alice")
            shutil.copy(certs.cert2, cert)
            shutil.copy(certs.key2, key)
            s.proc.send_signal(signal.SIGHUP)
            await asyncio.get_running_loop().run_in_executor(None, wait_until, lambda: serial_seen(
                s.port, certs) == tlscerts.SERIAL2, "the new certificate served")
            bob = await c.join("bob")  # on the new certificate
            await alice.expect("* bob joined #lobby")
            await say(alice, "my connection outlived the old certificate", bob)
            # A broken certificate: the last good one stays.
            with open(cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
            s.proc.send_signal(signal.SIGHUP)
            await asyncio.get_running_loop().run_in_executor(None, wait_until, lambda: metrics(s)[
                'wschat_tls_reloads_total{result="failed"}'] == 1, "the failed reload counted")
            assert serial_seen(s.port, certs) == tlscerts.SERIAL2
            await say(bob, "still fine", alice)
    run(body())
    assert metrics(s)['wschat_tls_reloads_total{result="ok"}'] == 1
    text = s.stderr_text()
    assert re.search(r"error tls_reload .*live\.pem", text), text[-2000:]
    assert_clean_exit(s)


def test_bad_files_refuse_to_start(certs):
    from conftest import CLI
    for args, code in ((["--tls-cert", certs.cert], 2), (["--tls-ca", certs.ca], 2),
                       (["--tls-cert", certs.cert, "--tls-key", certs.key2], 1),
                       (["--tls-cert", certs.key, "--tls-key", certs.key], 1)):
        p = subprocess.run([CLI, "--port", "0", "--no-history"] + args, capture_output=True, text=True,
                           timeout=10 * SCALE)
        assert p.returncode == code and p.stdout == "", (args, p.returncode, p.stdout)
        assert "tls" in p.stderr.lower(), p.stderr


def test_tls_from_the_config_file(start_server, certs, tmp_path):
    conf = tmp_path / "chat.ini"
    conf.write_text("tls-cert = %s\ntls-key = %s\n" % (certs.cert, certs.key))
    s = start_server("--config", str(conf))
    assert s.url.startswith("wss://"), s.url
    s.ssl = tlscerts.client_context(certs)
    status, _, body = fetch(s, "/healthz")
    assert status == 200 and body.strip() == b"ok"
    assert_clean_exit(s)


# ---- the page in Chromium over https:// and wss:// ----

@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (./dev test installs it)")
def test_chromium_page_over_https(tls_server, certs):
    from cdp import Chromium
    from test_web import say as page_say, set_name, wait_open, wait_text
    s = tls_server()
    flag = "--ignore-certificate-errors-spki-list=" + tlscerts.spki_hash(certs.cert)

    async def body():
        async with Chromium(flags=[flag]) as browser, Clients(s) as c:
            page = await browser.new_page()
            await page.goto("https://localhost:%d/" % s.port)
            await wait_open(page)
            await set_name(page, "webby")
            assert await page.eval("location.protocol") == "https:"
            bob = await c.join("bob")
            await page_say(page, "hello from chromium over wss")
            await bob.expect("[lobby] webby: hello from chromium over wss")
            await say(bob, "hello back")
            await wait_text(page, "lobby", "hello back")
    run(body(), s, timeout=60)
