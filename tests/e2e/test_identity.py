"""Identity (issue 10): JSON Web Tokens against the real chat-cli.

With --jwt-secret (HS256) or --jwt-public-key (RS256, ES256) every upgrade
needs a valid token, in ?token=, in an offered subprotocol
"wschat.token.TOKEN", or in "Authorization: Bearer TOKEN". Without one, or
with a bad or expired one: 401 (a browser, i.e. a request with an Origin
header: the upgrade, then close 4001). The token's name is the client's,
reserved while it is connected; its rooms restrict joins; when it expires
the connection is closed with 4003. HS256 tokens are made here with
hmac/hashlib; RS256 ones with the openssl command line.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time

import pytest
import websockets

from chatclient import TIMEOUT, ChatClient, run, welcome
from conftest import CLI
from wsutil import raw_upgrade

SECRET = "a-test-secret-of-at-least-thirty-two-bytes"
JSON_PROTO = "wschat.v1.json"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims, secret=SECRET, alg="HS256", header=None):
    head = b64url(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signing = ("%s.%s" % (head, body)).encode()
    if alg == "none":
        return signing.decode() + "."
    key = secret.encode() if isinstance(secret, str) else secret
    sig = hmac.new(key, signing, hashlib.sha256).digest()
    return signing.decode() + "." + b64url(sig)


def token_for(name, ttl=600, **extra):
    claims = {"sub": name, "exp": int(time.time()) + ttl}
    claims.update(extra)
    return make_token(claims)


def http_answer(server, target, headers=""):
    """The status line, the head and the body of an upgrade request."""
    s = raw_upgrade(server.port, target, headers)
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        return head.split(b"\r\n")[0].decode(), head.decode(), body.decode("utf-8", "replace")
    finally:
        s.close()


async def connect(server, query="", **kw):
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", 1)
    kw.setdefault("ping_interval", None)
    ws = await websockets.connect(server.url + query, **kw)
    return ChatClient(ws)


@pytest.fixture
def hs_server(start_server):
    return start_server("--jwt-secret", SECRET, "--rate", "0")


# ---- refusals ----

def test_without_a_token_401(hs_server):
    line, head, body = http_answer(hs_server, "/?name=alice")
    assert line == "HTTP/1.1 401 Unauthorized", line
    assert 'WWW-Authenticate: Bearer realm="wschat"' in head, head
    assert body == "token required\n", body
    # plain HTTP needs none
    line, _, _ = http_answer_plain(hs_server, "/healthz")
    assert line.startswith("HTTP/1.1 200"), line


def http_answer_plain(server, path):
    import socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[0].decode(), data, b""
    finally:
        s.close()


@pytest.mark.parametrize("token, why", [
    (lambda: make_token({"sub": "alice", "exp": int(time.time()) + 600}, secret="another-secret-of-thirty-two-bytes!!"),
     "token signature invalid"),
    (lambda: token_for("alice", ttl=-5), "token expired"),
    (lambda: make_token({"sub": "alice", "exp": int(time.time()) + 600}, alg="none"), "token algorithm not accepted"),
    (lambda: make_token({"sub": "alice", "exp": int(time.time()) + 600}, header={"alg": "none"}),
     "token algorithm not accepted"),
    (lambda: make_token({"sub": "alice"}), "token claims invalid"),
    (lambda: make_token({"sub": "not a name!", "exp": int(time.time()) + 600}), "token claims invalid"),
    (lambda: token_for("alice", nbf=int(time.time()) + 600), "token not yet valid"),
    (lambda: "not.a.token", "token malformed"),
    (lambda: token_for("alice") + "x", "token signature invalid"),
])
def test_bad_tokens_401(hs_server, token, why):
    tok = token()
    line, head, body = http_answer(hs_server, "/?token=" + tok)
    assert line == "HTTP/1.1 401 Unauthorized", (why, line)
    assert body == why + "\n", body
    assert tok not in hs_server.stderr_text()


def test_oversized_token_refused(start_server):
    server = start_server("--jwt-secret", SECRET, "--max-header", "65536")
    tok = token_for("alice", pad="x" * 9000)
    line, _, body = http_answer(server, "/?token=" + tok)
    assert line == "HTTP/1.1 401 Unauthorized", line
    assert body.startswith("token too long"), body


def test_a_browser_without_a_token_is_closed_4001(hs_server):
    async def body():
        for query, why in (("", "token required"), ("?token=" + token_for("alice", ttl=-1), "token expired")):
            ws = await websockets.connect(hs_server.url + query, origin="http://localhost:8080",
                                          open_timeout=TIMEOUT, close_timeout=1)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert e.value.rcvd.code == 4001, e.value
            assert e.value.rcvd.reason == why
    run(body(), hs_server)


# ---- accepted ----

def test_token_in_the_query_names_the_client(hs_server):
    async def body():
        alice = await connect(hs_server, "?name=mallory&token=" + token_for("alice"))
        await alice.expect(welcome("alice"))
        bob = await connect(hs_server, "?token=" + token_for("bob"))
        await bob.expect(welcome("bob"))
        await alice.expect("* bob joined #lobby")
        await bob.send("hi")
        await alice.expect("[lobby] bob: hi")
        await alice.close()
        await bob.close()
    run(body(), hs_server)


def test_token_in_a_subprotocol_with_json(hs_server):
    async def body():
        tok = token_for("carol")
        ws = await websockets.connect(hs_server.url, subprotocols=[JSON_PROTO, "wschat.token." + tok],
                                      origin="https://example.com", open_timeout=TIMEOUT, close_timeout=1)
        assert ws.subprotocol == JSON_PROTO
        assert tok not in str(ws.response_headers)
        w = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert w["type"] == "welcome" and w["name"] == "carol", w
        await ws.close()
        # the token entry first, and a text client (no subprotocol chosen)
        ws = await websockets.connect(hs_server.url + "?name=x", subprotocols=["wschat.token." + tok],
                                      open_timeout=TIMEOUT, close_timeout=1)
        assert ws.subprotocol is None
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == welcome("carol")
        await ws.close()
    run(body(), hs_server)


def test_token_in_an_authorization_header(hs_server):
    async def body():
        c = await connect(hs_server, extra_headers={"Authorization": "Bearer " + token_for("dave")})
        await c.expect(welcome("dave"))
        await c.close()
    run(body(), hs_server)


# ---- the name is the token's ----

def test_name_is_reserved_and_fixed(hs_server):
    async def body():
        alice = await connect(hs_server, "?token=" + token_for("alice"))
        await alice.expect(welcome("alice"))
        # a second connection with the same name: 409, or 4009 for a browser
        line, _, text = http_answer(hs_server, "/?token=" + token_for("alice"))
        assert line == "HTTP/1.1 409 Conflict" and text == "name in use\n", (line, text)
        ws = await websockets.connect(hs_server.url + "?token=" + token_for("ALICE"), origin="http://x.example",
                                      open_timeout=TIMEOUT, close_timeout=1)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert e.value.rcvd.code == 4009
        # no renames, in either protocol
        await alice.send("/nick bob")
        await alice.expect("! forbidden: your name comes from your token")
        j = await connect(hs_server, "?token=" + token_for("erin"), subprotocols=[JSON_PROTO])
        assert json.loads(await j.recv())["name"] == "erin"
        assert json.loads(await j.recv())["type"] == "join"
        await alice.expect("* erin joined #lobby")
        await j.send(json.dumps({"type": "nick", "name": "alice2"}))
        err = json.loads(await j.recv())
        assert err["type"] == "error" and err["code"] == "forbidden", err
        # alice still is alice
        await alice.send("still me")
        assert json.loads(await j.recv())["from"] == "alice"
        await alice.close()
        await j.close()
    run(body(), hs_server)


# ---- rooms ----

def test_rooms_restrict_joins(hs_server):
    async def body():
        tok = token_for("frank", rooms=["dev", "ops"])
        f = await connect(hs_server, "?room=dev&token=" + tok)
        await f.expect(welcome("frank", "dev"))
        await f.send("/join ops")
        await f.expect("* frank joined #ops")
        await f.send("/join secret")
        await f.expect("! forbidden: #secret is not among your token's rooms")
        await f.send("/join lobby")     # lobby is everyone's
        await f.expect("* frank joined #lobby")
        await f.close()
        # a ?room= outside the list starts in lobby, and says so
        f = await connect(hs_server, "?room=secret&token=" + tok)
        await f.expect(welcome("frank", "lobby"), "! forbidden: your token does not allow that room; you are in #lobby")
        await f.close()
        # JSON
        j = await connect(hs_server, "?token=" + tok, subprotocols=[JSON_PROTO])
        assert json.loads(await j.recv())["type"] == "welcome"
        assert json.loads(await j.recv())["type"] == "join"
        await j.send(json.dumps({"type": "join", "room": "Secret", "ref": 7}))
        err = json.loads(await j.recv())
        assert err["type"] == "error" and err["code"] == "forbidden" and err.get("ref") == 7, err
        await j.send(json.dumps({"type": "join", "room": "DEV"}))
        assert json.loads(await j.recv())["type"] == "join"
        await j.close()
    run(body(), hs_server)


# ---- expiry ----

def test_expiry_while_connected_closes_4003(hs_server):
    async def body():
        watcher = await connect(hs_server, "?token=" + token_for("watcher"))
        await watcher.expect(welcome("watcher"))
        c = await connect(hs_server, "?token=" + token_for("brief", ttl=2))
        await c.expect(welcome("brief"))
        await watcher.expect("* brief joined #lobby")
        t0 = time.monotonic()
        await c.expect_closed(4003, timeout=4)
        assert time.monotonic() - t0 < 3.5
        await watcher.expect("* brief left #lobby")
        await watcher.close()
    run(body(), hs_server)


# ---- RS256 and keys from files ----

def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, capture_output=True, check=True, timeout=30).stdout


@pytest.fixture
def rsa_keys():
    with tempfile.TemporaryDirectory() as d:
        key, pub = os.path.join(d, "key.pem"), os.path.join(d, "pub.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        openssl("pkey", "-in", key, "-pubout", "-out", pub)
        yield key, pub


def rs256(claims, key):
    signing = "%s.%s" % (b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()),
                         b64url(json.dumps(claims).encode()))
    sig = openssl("dgst", "-sha256", "-sign", key, data=signing.encode())
    return signing + "." + b64url(sig)


def test_rs256_and_alg_confusion(start_server, rsa_keys):
    key, pub = rsa_keys
    server = start_server("--jwt-public-key", pub)
    exp = int(time.time()) + 600

    async def body():
        c = await connect(server, "?token=" + rs256({"sub": "rsa_user", "exp": exp}, key))
        await c.expect(welcome("rsa_user"))
        await c.close()
    run(body())
    # an HS256 token whose secret is the public key's PEM
    with open(pub, "rb") as f:
        pem = f.read()
    line, _, text = http_answer(server, "/?token=" + make_token({"sub": "x", "exp": exp}, secret=pem))
    assert line == "HTTP/1.1 401 Unauthorized" and text == "token algorithm not accepted\n", (line, text)
    # a signature by another key
    with tempfile.TemporaryDirectory() as d:
        other = os.path.join(d, "other.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other)
        line, _, text = http_answer(server, "/?token=" + rs256({"sub": "x", "exp": exp}, other))
    assert line == "HTTP/1.1 401 Unauthorized" and text == "token signature invalid\n", (line, text)


def test_secret_file_and_bad_flags(start_server):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write(SECRET + "\n")
        server = start_server("--jwt-secret-file", path)

        async def body():
            c = await connect(server, "?token=" + token_for("filed"))
            await c.expect(welcome("filed"))
            await c.close()
        run(body(), server)
        for args in (["--jwt-secret", "short"], ["--jwt-public-key", path],
                     ["--jwt-secret-file", os.path.join(d, "missing")],
                     ["--jwt-secret", SECRET, "--jwt-secret-file", path]):
            p = subprocess.run([CLI, "--port", "0", "--no-history"] + args, capture_output=True,
                               text=True, timeout=10)
            assert p.returncode == 2, (args, p.returncode, p.stderr)
            assert "short" not in p.stderr or args[1] != "short" or "32" in p.stderr
            assert SECRET not in p.stderr


# ---- what an embedding program sees (tests/api_probe.c) ----

def test_the_application_never_sees_the_token(monkeypatch):
    """api_probe with identity on: the C API's setters refuse bad keys (its
    own checks), on_connect sees the token's name, the query and the
    offered subprotocols without the token; an expiry and a shutdown with a
    token client connected leave nothing behind (free and loop_close 0)."""
    import test_api
    monkeypatch.setenv("WSCHAT_PROBE_JWT_SECRET", SECRET)
    probe = test_api.Probe()
    try:
        async def body():
            tok = token_for("gina")
            ws = await websockets.connect(probe.url + "/?name=x&token=%s&room=dev" % tok,
                                          subprotocols=["probe.v1", "wschat.token." + tok],
                                          open_timeout=TIMEOUT, close_timeout=1)
            assert ws.subprotocol == "probe.v1"
            await probe.line(r"connect \d+ / name=x&room=dev")
            await probe.line(r"protocols \d+ probe\.v1")
            await probe.line(r"token name \d+ gina")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == welcome("gina", "dev")
            brief = await websockets.connect(probe.url + "/?token=" + token_for("brief", ttl=1),
                                             open_timeout=TIMEOUT, close_timeout=1)
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(brief.recv(), 3)
            assert brief.close_code == 4003
            await probe.line(r"disconnect \d+ brief 4003")
            # gina stays connected through the shutdown (her timer is live)
        run(body())
        lines = probe.finish()
        assert not [l for l in lines if tok_like(l)], lines
    finally:
        probe.kill()


def tok_like(line):
    return "eyJ" in line


def der_to_raw(der):
    """An ECDSA-Sig-Value (DER) as JWS wants it: r || s, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(32, b"\0")
        i += 2 + n
    return out


def test_es256(start_server):
    with tempfile.TemporaryDirectory() as d:
        key, pub = os.path.join(d, "ec.pem"), os.path.join(d, "ec.pub")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("pkey", "-in", key, "-pubout", "-out", pub)
        server = start_server("--jwt-public-key", pub)
        signing = "%s.%s" % (b64url(json.dumps({"alg": "ES256"}).encode()),
                             b64url(json.dumps({"sub": "ec_user", "exp": int(time.time()) + 600}).encode()))
        der = openssl("dgst", "-sha256", "-sign", key, data=signing.encode())
        good = signing + "." + b64url(der_to_raw(der))

        async def body():
            c = await connect(server, "?token=" + good)
            await c.expect(welcome("ec_user"))
            await c.close()
        run(body())
        # the DER form, as a careless signer sends it, is refused
        line, _, text = http_answer(server, "/?token=" + signing + "." + b64url(der))
        assert line == "HTTP/1.1 401 Unauthorized" and text == "token signature invalid\n", (line, text)
