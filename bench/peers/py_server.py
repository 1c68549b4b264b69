#!/usr/bin/python3
"""Minimal chat server on Python `websockets` (10.x), the peer libwschat is compared with.

Implements exactly the wire subset that bench/loadgen uses:
  ws://HOST:PORT/?name=NAME&room=ROOM
  - a welcome line "* ..." to the newcomer, "* NAME joined #ROOM" to the others;
  - every text message is sent to every member of the room, the sender included,
    as "[ROOM] NAME: TEXT" through websockets.broadcast() (encode-per-peer, no await);
  - "* NAME left #ROOM" on disconnect;
  - --echo: every message is sent back as it came.
Prints "listening on ws://HOST:PORT/" once it listens (port 0 picks a free port).
"""
import argparse
import asyncio
import re
import resource
import sys
import urllib.parse

import websockets

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ROOM_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

rooms = {}   # room -> set of connections
names = set()


async def chat(ws, path):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    name = q.get("name", [""])[0]
    room = q.get("room", ["lobby"])[0]
    if not NAME_RE.match(name) or not ROOM_RE.match(room):
        await ws.close(1008, "bad name or room")
        return
    if name in names:
        await ws.close(1008, "name taken")
        return
    names.add(name)
    members = rooms.setdefault(room, set())
    try:
        await ws.send(f"* welcome {name}, you are in #{room} with {len(members)} others")
        websockets.broadcast(members, f"* {name} joined #{room}")
        members.add(ws)
        async for msg in ws:
            if isinstance(msg, str):
                websockets.broadcast(members, f"[{room}] {name}: {msg}")
    finally:
        members.discard(ws)
        names.discard(name)
        if members:
            websockets.broadcast(members, f"* {name} left #{room}")
        else:
            rooms.pop(room, None)


async def echo(ws, path):
    async for msg in ws:
        await ws.send(msg)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--max-message", type=int, default=1 << 20)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = await websockets.serve(
        echo if args.echo else chat, args.host, args.port,
        max_size=args.max_message, compression=None,
        ping_interval=None, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on ws://{args.host}:{port}/", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
