/*
 * The wschat chat page: one WebSocket to the server the page came from,
 * speaking the JSON subprotocol wschat.v1.json (docs/PROTOCOL.md, section
 * 2). No framework and no build step: this file is served as it is.
 *
 * What it keeps, per room the user is in: the room's log (one element per
 * event, in id order), the ids it has shown (so nothing appears twice),
 * the highest id it has seen (what it asks for with `since` after a
 * reconnect), unread count, and who is typing.
 *
 * Text from other people is only ever put into the page with textContent:
 * never parsed as HTML.
 */
"use strict";

(() => {
  const PROTOCOL = "wschat.v1.json";
  const TYPING_EVERY_MS = 3000; /* the server drops typing sent more often */
  const TYPING_SHOWN_MS = 5000;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const NAME_RETRIES = 5;

  /* ---- storage: the name the user chose (remembered across visits in
   * localStorage; this tab's own in sessionStorage, which survives a
   * reload but is not shared with other tabs), and this tab's rooms ---- */

  const storage = {
    get(area, key) {
      try {
        return window[area].getItem("wschat." + key);
      } catch (e) {
        return null;
      }
    },
    set(area, key, value) {
      try {
        window[area].setItem("wschat." + key, value);
      } catch (e) {
        /* storage disabled: the page still works, it just forgets */
      }
    },
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    statusText: $("status-text"), /* read out when it changes */
    statusRetry: $("status-retry"), /* the countdown: shown, not read out */
    nameForm: $("name-form"),
    nameInput: $("name-input"),
    rooms: $("rooms"),
    joinForm: $("join-form"),
    joinInput: $("join-input"),
    roomTitle: $("room-title"),
    logs: $("logs"),
    typing: $("typing"),
    sendForm: $("send-form"),
    input: $("input"),
    members: $("members"),
  };

  const state = {
    ws: null,
    ready: false, /* welcome received on state.ws */
    name: "", /* our name on the server */
    epoch: null, /* the history store's epoch, from the welcome */
    rooms: new Map(), /* lower-case name -> room (see newRoom) */
    current: null, /* the room shown */
    attempt: 0, /* reconnects since the last welcome */
    timer: null,
    refs: new Map(), /* ref -> what the request was, for its reply */
    nextRef: 1,
    whispers: new Set(), /* ids of whispers shown */
    switchTo: null, /* a room the user asked to join: show it when in */
    nameRetries: 0,
    quit: false,
  };

  const key = (room) => room.toLowerCase();
  const sameName = (a, b) => a != null && b != null && a.toLowerCase() === b.toLowerCase();

  /* ---- DOM helpers: every piece of text goes in through textContent ---- */

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function timeEl(ts) {
    const d = new Date(ts);
    const t = el("time", "ts");
    t.dateTime = d.toISOString();
    const sameDay = d.toDateString() === new Date().toDateString();
    t.textContent = sameDay
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " +
        d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    t.title = d.toLocaleString();
    return t;
  }

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.statusText.textContent = text;
    ui.statusRetry.textContent = "";
  }

  /* ---- rooms ---- */

  function newRoom(name) {
    const k = key(name);
    let room = state.rooms.get(k);
    if (room) return room;
    room = {
      name,
      key: k,
      log: el("div", "log"),
      item: el("li"),
      button: el("button", "room"),
      badge: el("span", "badge"),
      seen: new Set(),
      lastId: 0,
      unread: 0,
      typing: new Map(), /* name -> timer */
      recovering: false, /* its next history answers a `since` */
      joined: false,
    };
    room.log.setAttribute("role", "log");
    room.log.setAttribute("aria-label", "Messages in #" + name);
    room.log.tabIndex = 0;
    room.log.hidden = true;
    room.button.type = "button";
    room.button.append(el("span", "room-name", "#" + name), room.badge);
    room.button.addEventListener("click", () => {
      showRoom(room);
      ui.input.focus();
    });
    const leave = el("button", "leave", "×");
    leave.type = "button";
    leave.title = "Leave #" + name;
    leave.setAttribute("aria-label", "Leave #" + name);
    leave.addEventListener("click", () => {
      leaveRoom(room.name);
      ui.input.focus();
    });
    room.item.append(room.button, leave);
    ui.rooms.append(room.item);
    ui.logs.append(room.log);
    state.rooms.set(k, room);
    updateBadge(room);
    saveRooms();
    if (!state.current) showRoom(room);
    return room;
  }

  function dropRoom(room) {
    room.item.remove();
    room.log.remove();
    for (const t of room.typing.values()) clearTimeout(t);
    state.rooms.delete(room.key);
    saveRooms();
    if (state.current === room) {
      const next = state.rooms.get("lobby") || state.rooms.values().next().value;
      if (next) showRoom(next);
      else state.current = null;
    }
  }

  function saveRooms() {
    storage.set("sessionStorage", "rooms", JSON.stringify([...state.rooms.values()].map((r) => r.name)));
  }

  function showRoom(room) {
    if (state.current) {
      state.current.log.hidden = true;
      state.current.button.removeAttribute("aria-current");
    }
    state.current = room;
    room.log.hidden = false;
    room.button.setAttribute("aria-current", "true");
    room.unread = 0;
    updateBadge(room);
    ui.roomTitle.textContent = "#" + room.name;
    if (decodeURIComponent(location.hash.slice(1)) !== room.name) {
      history.replaceState(null, "", "#" + encodeURIComponent(room.name));
    }
    room.log.scrollTop = room.log.scrollHeight;
    renderTyping();
    askMembers();
  }

  function updateBadge(room) {
    room.badge.textContent = room.unread ? String(room.unread) : "";
    room.badge.hidden = !room.unread;
    room.button.setAttribute("aria-label", "#" + room.name + (room.unread ? ", " + room.unread + " unread" : ""));
    let total = 0;
    for (const r of state.rooms.values()) total += r.unread;
    document.title = (total ? "(" + total + ") " : "") + "wschat";
  }

  /* ---- the log ---- */

  /* Puts line (with event id, or null) into room's log in id order: after
   * the last line with a smaller id. New events (the usual case) go at the
   * end, after any notices. */
  function place(room, line, id) {
    const log = room.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (id == null || id > room.lastId) {
      log.append(line);
    } else {
      let before = log.lastElementChild;
      while (before && !(before.dataset.id && Number(before.dataset.id) < id)) before = before.previousElementSibling;
      if (before) before.after(line);
      else log.prepend(line);
    }
    if (atBottom || id == null || id > room.lastId) log.scrollTop = log.scrollHeight;
  }

  function note(room, text, cls) {
    if (!room) return;
    place(room, el("p", "line note " + (cls || ""), text), null);
  }

  function divider(room, text) {
    place(room, el("p", "divider", text), null);
  }

  /* One event of room's stream; how: "live", "earlier" (history on
   * joining) or "missed" (recovered after a reconnect). Returns whether it
   * was new. */
  function showEvent(room, ev, how) {
    if (typeof ev.id === "number") {
      if (room.seen.has(ev.id)) return false;
      room.seen.add(ev.id);
    }
    const line = el("p", "line " + ev.type + (how !== "live" ? " " + how : ""));
    if (typeof ev.id === "number") line.dataset.id = String(ev.id);
    if (ev.ts) line.append(timeEl(ev.ts), " ");
    if (how === "earlier") line.append(el("span", "tag", "earlier"), " ");
    if (how === "missed") line.append(el("span", "tag", "missed"), " ");
    switch (ev.type) {
      case "message":
        if (sameName(ev.from, state.name)) line.classList.add("mine");
        if (ev.action) {
          line.classList.add("action");
          line.append("* ", el("span", "from", ev.from), " ", el("span", "text", ev.text));
        } else {
          line.append(el("span", "from", ev.from), ": ", el("span", "text", ev.text));
        }
        stopTyping(room, ev.from);
        break;
      case "join":
        line.append(el("span", "from", ev.name), " joined #" + ev.room);
        break;
      case "leave":
        line.append(el("span", "from", ev.name), " left #" + ev.room);
        if (ev.reason) line.append(" (", el("span", "text", ev.reason), ")");
        stopTyping(room, ev.name);
        break;
      case "nick":
        line.append(el("span", "from", ev.from), " is now known as ", el("span", "from", ev.to));
        stopTyping(room, ev.from);
        break;
      case "notice":
        line.append("* ", el("span", "text", ev.text));
        break;
      default:
        line.append(el("span", "text", JSON.stringify(ev)));
    }
    place(room, line, typeof ev.id === "number" ? ev.id : null);
    if (typeof ev.id === "number" && ev.id > room.lastId) room.lastId = ev.id;
    if (ev.type === "message" && how !== "earlier" && room !== state.current && !sameName(ev.from, state.name)) {
      room.unread++;
      updateBadge(room);
    }
    return true;
  }

  function showWhisper(ev) {
    if (state.whispers.has(ev.id)) return;
    state.whispers.add(ev.id);
    const room = state.current;
    if (!room) return;
    const line = el("p", "line whisper");
    line.append(timeEl(ev.ts), " ");
    if (sameName(ev.from, state.name)) {
      line.append("whisper to ", el("span", "from", ev.to), ": ", el("span", "text", ev.text));
    } else {
      line.append("whisper from ", el("span", "from", ev.from), ": ", el("span", "text", ev.text));
    }
    place(room, line, null);
  }

  /* ---- members and typing ---- */

  let membersTimer = null;
  function askMembers() {
    clearTimeout(membersTimer);
    membersTimer = setTimeout(() => {
      if (state.current) request({ type: "users", room: state.current.name }, { kind: "members", room: state.current.key });
    }, 100);
  }

  function showMembers(names) {
    ui.members.replaceChildren(
      ...names.map((n) => {
        const li = el("li", sameName(n, state.name) ? "me" : "", n);
        if (sameName(n, state.name)) li.append(el("span", "you", " (you)"));
        return li;
      })
    );
  }

  function startTyping(room, name) {
    if (sameName(name, state.name)) return;
    clearTimeout(room.typing.get(name));
    room.typing.set(name, setTimeout(() => stopTyping(room, name), TYPING_SHOWN_MS));
    if (room === state.current) renderTyping();
  }

  function stopTyping(room, name) {
    if (!room.typing.has(name)) return;
    clearTimeout(room.typing.get(name));
    room.typing.delete(name);
    if (room === state.current) renderTyping();
  }

  function renderTyping() {
    const names = state.current ? [...state.current.typing.keys()] : [];
    ui.typing.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" :
      names.length <= 3 ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…" :
      "several people are typing…";
  }

  const lastTyping = new Map(); /* room key -> when we last said so */
  ui.input.addEventListener("input", () => {
    const room = state.current;
    const text = ui.input.value;
    if (!room || !state.ready || text === "" || (text[0] === "/" && !text.startsWith("//") && !/^\/me\s/i.test(text))) return;
    const now = Date.now();
    if (now - (lastTyping.get(room.key) || 0) < TYPING_EVERY_MS) return;
    lastTyping.set(room.key, now);
    send({ type: "typing", room: room.name });
  });

  /* ---- requests ---- */

  function send(obj) {
    if (!state.ready) return false;
    state.ws.send(JSON.stringify(obj));
    return true;
  }

  /* A request whose reply or error we want to tell apart: what says what
   * it was (kind, room, ...). */
  function request(obj, what) {
    const ref = "r" + state.nextRef++;
    obj.ref = ref;
    if (!send(obj)) return false;
    state.refs.set(ref, what);
    /* A request that succeeds with an event (message, join, nick, ...)
     * gets no reply carrying its ref: forget the oldest ones. */
    if (state.refs.size > 200) state.refs.delete(state.refs.keys().next().value);
    return true;
  }

  function joinRoom(name, since) {
    const room = state.rooms.get(key(name));
    const obj = { type: "join", room: name };
    if (since && state.epoch) {
      obj.since = since;
      obj.epoch = state.epoch;
    }
    if (room) room.recovering = Boolean(obj.since);
    return request(obj, { kind: "join", room: key(name), recovery: Boolean(room) });
  }

  function leaveRoom(name) {
    if (key(name) === "lobby" && state.rooms.size === 1 && state.rooms.has("lobby")) {
      note(state.current, "You are only in #lobby: there is no room to go back to from it.");
      return true;
    }
    return needConnection(request({ type: "leave", room: name }, { kind: "leave", room: key(name) }));
  }

  /* ---- what the user types ---- */

  const HELP = [
    "Commands: /join ROOM, /leave [ROOM], /nick NAME, /me ACTION,",
    "/whisper NAME TEXT (or /w, /msg), /users [* for everyone], /rooms,",
    "/history [N] (1-500), /quit. Start a line with // to say it with one /.",
  ];

  /* Returns whether text was handled (sent, or answered here); false
   * leaves it in the input. */
  function typed(text) {
    const room = state.current;
    if (!text.trim()) return true;
    if (text[0] !== "/" || text.startsWith("//")) {
      return say({ type: "message", room: room.name, text: text[0] === "/" ? text.slice(1) : text });
    }
    const m = /^\/(\S+)\s*([\s\S]*)$/.exec(text);
    const cmd = m[1].toLowerCase();
    const arg = m[2].trim().replace(/^#(?=\S)/, ""); /* "/join #dev" too */
    switch (cmd) {
      case "join":
        if (!arg || /\s/.test(arg)) return usage("/join ROOM");
        if (state.rooms.has(key(arg))) {
          showRoom(state.rooms.get(key(arg)));
          return true;
        }
        state.switchTo = key(arg);
        return needConnection(joinRoom(arg, 0));
      case "leave":
      case "part":
        return leaveRoom(arg || room.name);
      case "nick":
        if (!arg || /\s/.test(arg)) return usage("/nick NAME");
        return needConnection(rename(arg));
      case "me":
        if (!arg) return usage("/me ACTION");
        return say({ type: "message", room: room.name, text: arg, action: true });
      case "whisper":
      case "w":
      case "msg": {
        const w = /^(\S+)\s+([\s\S]+)$/.exec(m[2]);
        if (!w) return usage("/whisper NAME TEXT");
        return needConnection(request({ type: "whisper", to: w[1], text: w[2] }, { kind: "whisper" }));
      }
      case "users":
        return needConnection(
          arg === "*"
            ? request({ type: "users" }, { kind: "users" })
            : request({ type: "users", room: arg || room.name }, { kind: "users" })
        );
      case "rooms":
        return needConnection(request({ type: "rooms" }, { kind: "rooms" }));
      case "history": {
        const n = arg ? Number(arg) : 50;
        if (!Number.isInteger(n) || n < 1 || n > 500) return usage("/history [N] (N from 1 to 500)");
        return needConnection(request({ type: "history", room: room.name, limit: n }, { kind: "history", room: room.key }));
      }
      case "help":
        for (const l of HELP) note(room, l);
        return true;
      case "quit":
        state.quit = true;
        if (state.ws) state.ws.close(1000, arg || "bye");
        return true;
      default:
        note(room, "unknown command /" + m[1] + ", try /help", "error");
        return true;
    }
  }

  function usage(text) {
    note(state.current, "usage: " + text, "error");
    return false;
  }

  function needConnection(sent) {
    if (!sent) note(state.current, "Not connected: nothing was sent. It will work again once reconnected.", "error");
    return sent;
  }

  function say(obj) {
    return needConnection(request(obj, { kind: "message", room: key(obj.room) }));
  }

  function rename(name) {
    return request({ type: "nick", name }, { kind: "nick", name });
  }

  ui.sendForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!state.current) return;
    if (typed(ui.input.value)) ui.input.value = "";
    ui.input.focus();
  });

  ui.joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = ui.joinInput.value.trim();
    if (!name) return;
    if (typed("/join " + name)) ui.joinInput.value = "";
    ui.input.focus();
  });

  ui.nameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = ui.nameInput.value.trim();
    if (!name || sameName(name, state.name)) return;
    needConnection(rename(name));
    ui.input.focus();
  });

  window.addEventListener("hashchange", () => {
    const name = decodeURIComponent(location.hash.slice(1));
    if (!name) return;
    const room = state.rooms.get(key(name));
    if (room) showRoom(room);
    else if (state.ready) {
      state.switchTo = key(name);
      joinRoom(name, 0);
    }
  });

  /* ---- what the server sends ---- */

  const WORDS = {
    name_taken: "That name is taken.",
    name_reserved: "That name is reserved.",
    invalid_name: "Names are 1-32 letters, digits, - or _.",
    invalid_room: "Room names are 1-64 letters, digits, -, _ or dots.",
    no_such_user: "Nobody here has that name.",
    no_such_room: "There is no such room.",
    not_member: "You are not in that room.",
    already_member: "You are already in that room.",
    too_many_rooms: "You are in as many rooms as the server allows: leave one first.",
    rate_limited: "You are sending too fast: wait a moment.",
    unavailable: "The server keeps no history at the moment.",
    too_long: "That is too long.",
    internal: "The server failed and nothing happened: try again.",
    bad_json: "The page sent something the server could not read (a bug in this page).",
    bad_field: "The page sent something the server could not read (a bug in this page).",
    unknown_type: "The page sent a request the server does not know.",
  };

  function onServer(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      return;
    }
    const what = msg.ref != null ? state.refs.get(msg.ref) : undefined;
    if (msg.ref != null) state.refs.delete(msg.ref);
    switch (msg.type) {
      case "welcome":
        return onWelcome(msg);
      case "history":
        return onHistory(msg, what);
      case "message":
      case "join":
      case "leave":
      case "nick":
      case "notice":
        return onEvent(msg);
      case "whisper":
        return showWhisper(msg);
      case "typing": {
        const room = state.rooms.get(key(msg.room));
        if (room) startTyping(room, msg.from);
        return;
      }
      case "users":
        if (what && what.kind === "members") {
          if (state.current && what.room === state.current.key) showMembers(msg.users);
        } else {
          note(state.current, (msg.room ? "users in #" + msg.room : "users") + ": " + msg.users.join(", "));
        }
        return;
      case "rooms":
        note(state.current, "rooms: " + msg.rooms.map((r) => r.name + " (" + r.users + ")").join(", "));
        return;
      case "error":
        return onError(msg, what);
      default:
        /* a newer server's object: clients must accept what they do not know */
    }
  }

  function wantedName() {
    return storage.get("sessionStorage", "name") || storage.get("localStorage", "name") || "";
  }

  function rememberName(name) {
    storage.set("sessionStorage", "name", name);
    storage.set("localStorage", "name", name);
  }

  function onWelcome(msg) {
    state.ready = true;
    state.attempt = 0;
    state.name = msg.name;
    ui.nameInput.value = msg.name;
    if (msg.epoch !== state.epoch && state.epoch !== null) {
      /* A new database: the ids we know mean nothing here. */
      for (const room of state.rooms.values()) {
        room.seen.clear();
        room.lastId = 0;
        for (const line of room.log.querySelectorAll("[data-id]")) delete line.dataset.id;
        divider(room, "The server's history was reset");
      }
    }
    state.epoch = msg.epoch;
    if (sameName(msg.name, wantedName())) rememberName(msg.name);
    setStatus("open", "connected as " + msg.name);
    for (const name of msg.rooms) newRoom(name).joined = true;
    /* The connect URL recovered one room; the others are joined again,
     * each from the last id this page saw in it. */
    for (const room of state.rooms.values()) {
      if (!msg.rooms.some((n) => sameName(n, room.name))) joinRoom(room.name, room.lastId);
    }
    if (!state.current || !state.rooms.has(state.current.key)) showRoom(newRoom(msg.room));
    else askMembers();
  }

  function onHistory(msg, what) {
    let room = state.rooms.get(key(msg.room));
    if (!room) {
      if (what && what.kind === "history") return; /* left meanwhile */
      room = newRoom(msg.room);
    }
    const asked = what && what.kind === "history";
    const reload = what && what.kind === "reload";
    const how = room.recovering && !asked && !reload ? "missed" : "earlier";
    const recovering = room.recovering && !asked && !reload;
    if (!asked && !reload) room.recovering = false;
    const fresh = msg.messages.filter((ev) => !room.seen.has(ev.id));
    if (how === "missed" && fresh.length) {
      divider(room, fresh.length === 1 ? "1 event while you were away" : fresh.length + " events while you were away");
    }
    for (const ev of msg.messages) showEvent(room, ev, how);
    if (how === "earlier" && fresh.length) {
      let top = room.log.querySelector(".divider.earlier-top");
      if (!top) top = el("p", "divider earlier-top", "Earlier messages");
      room.log.prepend(top);
    }
    if (asked) note(room, fresh.length + " earlier events of #" + room.name + " loaded (" + (msg.messages.length - fresh.length) + " already shown)");
    if (msg.complete === false) {
      if (recovering) {
        note(room, "Some of what was said in #" + room.name + " while you were away can no longer be recovered; reloading its recent history.", "warn");
        request({ type: "history", room: room.name, limit: 50 }, { kind: "reload", room: room.key });
      } else {
        note(room, "Some earlier messages of #" + room.name + " are no longer available.", "warn");
      }
    }
  }

  function onEvent(ev) {
    if (ev.room == null) {
      if (state.current) showEvent(state.current, ev, "live");
      return;
    }
    let room = state.rooms.get(key(ev.room));
    const me = (ev.type === "join" || ev.type === "leave") && sameName(ev.name, state.name);
    if (!room) {
      if (!(me && ev.type === "join")) return;
      room = newRoom(ev.room);
    }
    if (me && ev.type === "join") room.joined = true;
    if (ev.type === "nick" && sameName(ev.from, state.name)) {
      state.name = ev.to;
      ui.nameInput.value = ev.to;
      rememberName(ev.to);
      setStatus("open", "connected as " + ev.to);
    }
    showEvent(room, ev, "live");
    if (me && ev.type === "leave") {
      dropRoom(room);
      return;
    }
    if (me && ev.type === "join" && state.switchTo === room.key) {
      state.switchTo = null;
      showRoom(room);
      return;
    }
    if (room === state.current && ev.type !== "message") askMembers();
  }

  function onError(msg, what) {
    const words = (WORDS[msg.code] || "Error.") + " (" + msg.message + ")";
    const room = (what && what.room && state.rooms.get(what.room)) || state.current;
    if (!what && ["name_taken", "name_reserved", "invalid_name"].includes(msg.code)) {
      return connectNameRefused(msg, words);
    }
    if (what && what.kind === "nick-retry") {
      if (msg.code === "name_taken" && state.nameRetries < NAME_RETRIES) {
        state.nameRetries++;
        setTimeout(() => retryName(what.name), 1000 * state.nameRetries);
        return;
      }
      note(state.current, "You are " + state.name + ": the name " + what.name + " is still in use. Choose another above.", "error");
      return;
    }
    if (what && what.kind === "join" && what.recovery && msg.code !== "already_member") {
      const gone = state.rooms.get(what.room);
      if (gone) {
        note(state.current, "Could not rejoin #" + gone.name + ": " + words, "error");
        dropRoom(gone);
      }
      return;
    }
    if (what && what.kind === "join") state.switchTo = null;
    note(room, words, "error");
  }

  /* At connect, the name we asked for was refused and we are guest-N. If
   * this tab had the name (a reload or a reconnect), its old connection
   * may still be closing: ask again a few times. Otherwise someone else
   * (another tab?) has it: say so. */
  function connectNameRefused(msg, words) {
    const wanted = wantedName();
    if (msg.code === "name_taken" && storage.get("sessionStorage", "name") === wanted && wanted) {
      state.nameRetries = 0;
      setTimeout(() => retryName(wanted), 1000);
      note(state.current, "The name " + wanted + " is still in use (your previous connection?); trying again.", "warn");
      return;
    }
    note(state.current, words + " You are " + state.name + " for now: type another name above.", "error");
  }

  function retryName(name) {
    if (!state.ready || sameName(name, state.name)) return;
    request({ type: "nick", name }, { kind: "nick-retry", name });
  }

  /* ---- the connection ---- */

  function connect() {
    clearTimeout(state.timer);
    state.timer = null;
    const q = new URLSearchParams();
    const name = wantedName();
    if (name) q.set("name", name);
    const first = state.current;
    if (first) {
      q.set("room", first.name);
      first.recovering = first.lastId > 0 && state.epoch != null;
      if (first.recovering) {
        q.set("since", String(first.lastId));
        q.set("epoch", state.epoch);
      }
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(scheme + "//" + location.host + "/?" + q.toString(), PROTOCOL);
    } catch (e) {
      setStatus("closed", "cannot connect: " + e.message);
      return;
    }
    state.ws = ws;
    state.ready = false;
    clearTimeout(countdownTimer);
    delete ui.status.dataset.retryAt;
    setStatus("connecting", state.attempt ? "reconnecting…" : "connecting…");
    ws.onopen = () => {
      if (ws.protocol !== PROTOCOL) {
        setStatus("closed", "this server does not speak " + PROTOCOL);
        state.quit = true;
        ws.close(1000);
      }
    };
    ws.onmessage = (e) => {
      if (ws === state.ws && typeof e.data === "string") onServer(e.data);
    };
    ws.onclose = (e) => {
      if (ws !== state.ws) return;
      state.ws = null;
      state.ready = false;
      state.refs.clear();
      for (const room of state.rooms.values()) {
        for (const n of [...room.typing.keys()]) stopTyping(room, n);
      }
      if (state.quit) {
        setStatus("closed", "disconnected: reload the page to come back");
        return;
      }
      const delay = Math.round(BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() * 0.5));
      state.attempt++;
      const why = e.reason ? " (" + e.reason + ")" : e.code === 1001 ? " (the server went away)" : "";
      retryAt = Date.now() + delay;
      ui.status.dataset.retryAt = String(retryAt);
      setStatus("closed", "disconnected" + why + ": reconnecting");
      countdown();
      state.timer = setTimeout(connect, delay);
    };
  }

  /* " in N s" after "reconnecting", counted down each second. */
  let retryAt = 0;
  let countdownTimer = null;
  function countdown() {
    clearTimeout(countdownTimer);
    if (state.ws || state.quit) return;
    ui.statusRetry.textContent = " in " + Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)) + " s";
    countdownTimer = setTimeout(countdown, 1000);
  }

  window.addEventListener("online", () => {
    if (!state.ws && !state.quit) connect();
  });

  /* ---- start: the rooms this tab was in, and the one in the URL ---- */

  let saved = [];
  try {
    saved = JSON.parse(storage.get("sessionStorage", "rooms") || "[]");
  } catch (e) {
    saved = [];
  }
  const fromHash = decodeURIComponent(location.hash.slice(1));
  for (const name of saved) if (typeof name === "string" && name) newRoom(name);
  const start = fromHash || (saved.length ? saved[saved.length - 1] : "lobby");
  showRoom(newRoom(start));
  ui.nameInput.value = wantedName();
  ui.input.focus();
  connect();
})();
