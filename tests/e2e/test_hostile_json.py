"""Hostile clients of the JSON subprotocol (docs/PROTOCOL.md section 2)
against chat-cli with a history store: malformed requests answered with
the codes of 2.6, bursts of history requests and of joins that must not
let one client take the store and the loop from everyone, and clients
that vanish while their reads are in flight.

Bursts are sent with one write on a raw socket (tests/e2e/wsraw.py), so
that the server reads them in one go, before any read is answered.
"""
import json
import os
import time

import pytest

from conftest import without_flood_control

from wsraw import OP_BINARY, OP_TEXT, RawWS, encode_frame, new_key, upgrade_request


@pytest.fixture
def start_server(start_server):  # noqa: F811 (conftest's, without flood control)
    return without_flood_control(start_server)

JSON_PROTOCOL = "wschat.v1.json"


@pytest.fixture
def hist_server(start_server, tmp_path):
    return start_server("--history", str(tmp_path / "h.db"))


def open_json(server, query):
    """A JSON client past its welcome, history and own join."""
    ws = RawWS(server.host, server.port, timeout=5.0)
    key = new_key()
    ws.handshake(request=upgrade_request(ws.hostport(), path="/?" + query, key=key,
                                         extra=[("Sec-WebSocket-Protocol", JSON_PROTOCOL)]),
                 key=key)
    assert recv(ws)["type"] == "welcome"
    while recv(ws)["type"] != "join":
        pass
    return ws


def recv(ws, timeout=5.0):
    return json.loads(ws.recv_message(timeout=timeout)[1])


def burst(ws, requests):
    ws.send(b"".join(encode_frame(OP_TEXT, json.dumps(r).encode()) for r in requests))


def say(ws, n):
    burst(ws, [{"type": "message", "text": "line %d" % i} for i in range(n)])
    got = 0
    while got < n:
        got += recv(ws)["type"] == "message"


BAD = [
    (b"{", "bad_json"),
    (b"[]", "bad_json"),
    (b'{"type":"message","text":"a","text":"b"}', "bad_json"),
    (b"[" * 100000, "bad_json"),
    (b'{"type":"rooms","ref":' + b"[" * 17 + b"]" * 17 + b"}", "bad_json"),
    (b'{"type":"Message","text":"x"}', "unknown_type"),
    (b'{"type":1}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":0}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":501}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":1e2}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":1e400}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":5,"before":-1}', "bad_field"),
    (b'{"type":"history","room":"dev","limit":5,"before":9007199254740992}', "bad_field"),
    (b'{"type":"join","room":"x","since":-1}', "bad_field"),
    (b'{"type":"join","room":"x","since":9007199254740992}', "bad_field"),
    (b'{"type":"join","room":"x","since":"5"}', "bad_field"),
    (b'{"type":"join","room":"x","since":0,"epoch":""}', "bad_field"),
    (b'{"type":"message","text":"a\\u0000b"}', "bad_field"),
    (b'{"type":"rooms","ref":true}', "bad_field"),
    (b'{"type":"join","room":"x","since":0,"epoch":"' + b"f" * 65 + b'"}', "too_long"),
    (b'{"type":"message","text":"' + b"a" * 65537 + b'"}', "too_long"),
    (b'{"type":"nick","name":"a b"}', "invalid_name"),
    (b'{"type":"join","room":"a b"}', "invalid_room"),
    (b'{"type":"history","room":"elsewhere","limit":5}', "not_member"),
    (b'{"type":"typing","room":"elsewhere"}', "not_member"),
    (b'{"type":"join","room":"dev"}', "already_member"),
]


def test_malformed_requests_get_their_codes(hist_server):
    with open_json(hist_server, "name=mal&room=dev") as ws:
        for raw, code in BAD:
            ws.send_frame(OP_TEXT, raw)
            m = recv(ws)
            assert (m["type"], m.get("code")) == ("error", code), (raw[:60], m)
        ws.send_frame(OP_BINARY, b"\x00\x01")
        m = recv(ws)
        assert (m["type"], m["code"]) == ("error", "bad_json")
        # still served, and nothing was said
        ws.send_text(json.dumps({"type": "history", "room": "dev", "limit": 50, "ref": "h"}))
        m = recv(ws)
        assert m["type"] == "history" and m["ref"] == "h"
        assert [e["type"] for e in m["messages"]] == ["join"]


def test_history_request_flood_is_refused_past_the_limit(hist_server):
    """Regression: nothing bounded the history reads one client had in
    flight. 20,000 requests of 500 rows (1.4 MB sent in half a second,
    never read) held a release build at 1 GB and kept a new client from
    even opening for 16 s. Past 4 requests in flight, a request is now
    answered rate_limited (with its ref)."""
    with open_json(hist_server, "name=flood&room=dev") as ws:
        say(ws, 50)
        n = 200
        burst(ws, [{"type": "history", "room": "dev", "limit": 500, "ref": i} for i in range(n)])
        answered = {}
        while len(answered) < n:
            m = recv(ws)
            assert m["ref"] not in answered, m
            answered[m["ref"]] = m["type"] if m["type"] == "history" else m["code"]
        kinds = set(answered.values())
        assert kinds <= {"history", "rate_limited"}, kinds
        assert "rate_limited" in kinds
        assert list(answered.values()).count("history") < n // 2
        # once answered, asking again works
        ws.send_text(json.dumps({"type": "history", "room": "dev", "limit": 1, "ref": "again"}))
        m = recv(ws)
        assert (m["type"], m["ref"]) == ("history", "again")


def test_join_storm_keeps_each_replay_before_its_join(hist_server):
    """A burst of joins (each asking for recovery from 0) and leaves: every
    join still gets one history before its join event; past the reads one
    client may have in flight, the history is empty and incomplete instead
    of one more read of up to 10,000 rows."""
    with open_json(hist_server, "name=storm&room=dev") as ws:
        say(ws, 20)
        rooms = ["s%d" % i for i in range(60)]
        reqs = []
        for r in rooms:
            reqs.append({"type": "join", "room": r, "since": 0})
            reqs.append({"type": "leave", "room": r})
        burst(ws, reqs)
        seen = {}
        while len(seen) < len(rooms) or any(len(v) < 3 for v in seen.values()):
            m = recv(ws)
            if m.get("room") in rooms and m["type"] in ("history", "join", "leave"):
                seen.setdefault(m["room"], []).append(m)
        incomplete = 0
        for r in rooms:
            assert [m["type"] for m in seen[r]] == ["history", "join", "leave"], seen[r]
            incomplete += not seen[r][0]["complete"]
        assert incomplete > 0
        # a later join reads again
        ws.send_text(json.dumps({"type": "join", "room": "calm"}))
        m = recv(ws)
        assert (m["type"], m["room"], m["complete"]) == ("history", "calm", True)


def test_vanishing_with_reads_in_flight(hist_server):
    """Clients that ask (history, joins with recovery) and drop the TCP
    connection at once, many times: the answers find their client gone.
    The server must stay up and serve the next client."""
    with open_json(hist_server, "name=seed&room=dev") as ws:
        say(ws, 100)
    for i in range(30):
        ws = open_json(hist_server, "name=v%d&room=dev&since=0" % i)
        burst(ws, [{"type": "history", "room": "dev", "limit": 500}] * 3 +
              [{"type": "join", "room": "x%d" % j, "since": 0} for j in range(5)])
        ws.abort()
    for i in range(10):  # gone while its own replay is read
        ws = RawWS(hist_server.host, hist_server.port, timeout=5.0)
        key = new_key()
        ws.send(upgrade_request(ws.hostport(), path="/?name=w%d&room=dev&since=0" % i, key=key,
                                extra=[("Sec-WebSocket-Protocol", JSON_PROTOCOL)]))
        ws.abort()
    time.sleep(0.3)
    assert hist_server.alive()
    with open_json(hist_server, "name=after&room=dev") as ws:
        ws.send_text(json.dumps({"type": "history", "room": "dev", "limit": 500, "ref": 1}))
        m = recv(ws)
        assert m["type"] == "history" and m["complete"] is True
