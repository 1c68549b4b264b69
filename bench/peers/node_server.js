#!/usr/bin/env node
// Minimal chat server on Node `ws` (8.x), the peer libwschat is compared with.
//
// Implements exactly the wire subset that bench/loadgen uses:
//   ws://HOST:PORT/?name=NAME&room=ROOM
//   - a welcome line "* ..." to the newcomer, "* NAME joined #ROOM" to the others;
//   - every text message goes to every member of the room, the sender included,
//     as "[ROOM] NAME: TEXT" (the string is turned into a Buffer once per message);
//   - "* NAME left #ROOM" on disconnect;
//   - --echo: every message is sent back with its opcode.
// Prints "listening on ws://HOST:PORT/" once it listens (port 0 picks a free port).
'use strict';
const { WebSocketServer } = require('ws');

const args = { host: '127.0.0.1', port: 0, echo: false, maxMessage: 1 << 20 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--host') args.host = process.argv[++i];
  else if (a === '--port') args.port = Number(process.argv[++i]);
  else if (a === '--echo') args.echo = true;
  else if (a === '--max-message') args.maxMessage = Number(process.argv[++i]);
  else { console.error(`unknown option ${a}`); process.exit(2); }
}

const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const rooms = new Map(); // room -> Set of sockets
const names = new Set();

function broadcast(members, text) {
  const data = Buffer.from(text);
  for (const m of members) if (m.readyState === 1) m.send(data, { binary: false });
}

const wss = new WebSocketServer({
  host: args.host, port: args.port, perMessageDeflate: false,
  maxPayload: args.maxMessage, clientTracking: false, backlog: 4096,
});

wss.on('connection', (ws, req) => {
  if (args.echo) {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  const q = new URL(req.url, 'http://x').searchParams;
  const name = q.get('name') || '';
  const room = q.get('room') || 'lobby';
  if (!NAME_RE.test(name) || !ROOM_RE.test(room)) { ws.close(1008, 'bad name or room'); return; }
  if (names.has(name)) { ws.close(1008, 'name taken'); return; }
  names.add(name);
  let members = rooms.get(room);
  if (!members) { members = new Set(); rooms.set(room, members); }
  ws.send(`* welcome ${name}, you are in #${room} with ${members.size} others`);
  broadcast(members, `* ${name} joined #${room}`);
  members.add(ws);
  const prefix = `[${room}] ${name}: `;
  ws.on('message', (data, isBinary) => {
    if (!isBinary) broadcast(members, prefix + data.toString());
  });
  ws.on('close', () => {
    members.delete(ws);
    names.delete(name);
    if (members.size) broadcast(members, `* ${name} left #${room}`);
    else rooms.delete(room);
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  const { port } = wss.address();
  process.stdout.write(`listening on ws://${args.host}:${port}/\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
