// goim.js: a goim v2 client for browsers, over WebSocket (binary frames,
// one packet per frame). An ES module with no dependencies and no build
// step:
//
//   import { GoimClient } from './goim.js';
//   const c = new GoimClient({ url: 'ws://127.0.0.1:3102/sub', mid: 123,
//                              room: 'live://1000', accepts: [1000] });
//   c.on('message', m => console.log(m.op, m.text));
//   c.on('online', n => console.log('room online', n));
//   c.on('state', s => console.log(s.state));
//   c.connect();
//
// With { ack: true } it acknowledges ensure messages (ops 18 and 19, not
// in goim): each op 19's id is acked, a resend seen before is dropped, and
// the message inside comes as a 'message' event with { id, seq } as its
// second argument. With { recover: true } room messages and broadcasts
// come with their positions (op 20): the last ones are named again on
// reconnect and on a change back to a room, and what was missed comes
// first, then a 'recovery' event says whether that was all of it.
//
// Options, events and methods: clients/js/README.md. The wire format is
// docs/protocol.md.

export const OP = Object.freeze({
  HEARTBEAT: 2, HEARTBEAT_REPLY: 3, SEND_MSG: 4, AUTH: 7, AUTH_REPLY: 8,
  RAW: 9, CHANGE_ROOM: 12, CHANGE_ROOM_REPLY: 13, SUB: 14, SUB_REPLY: 15,
  UNSUB: 16, UNSUB_REPLY: 17, ACK: 18, ENSURE: 19, POSITION: 20, RECOVERY: 21,
});

const HEADER_LEN = 16;
const VERSION = 1;
const ENSURE_ID_MAX = 64;
const ACK_BODY_MAX = 4096;      // bytes of ids in one op 18
const ACK_BATCH_MS = 100;       // ids acked together within this

// goim's NodesReply defaults (/goim/nodes/weighted) when logic has none
export const DEFAULTS = Object.freeze({
  heartbeat: 240,             // seconds between heartbeats
  heartbeatMax: 2,            // missed replies before the link counts as dead
  backoff: Object.freeze({ base_delay: 1, max_delay: 60, factor: 1.8,
                           jitter: 0.3 }),
  requestTimeout: 10,         // seconds to wait for a reply to 12/14/16
  ackSeen: 4096,              // ensure ids remembered, to drop resends
  recoverRooms: 64,           // rooms whose last position is remembered
});

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

export function encodePacket(op, seq, body = new Uint8Array(0), ver = VERSION) {
  const b = typeof body === 'string' ? encoder.encode(body) : body;
  const buf = new Uint8Array(HEADER_LEN + b.length);
  const v = new DataView(buf.buffer);
  v.setInt32(0, buf.length);
  v.setInt16(4, HEADER_LEN);
  v.setInt16(6, ver);
  v.setInt32(8, op);
  v.setInt32(12, seq);
  buf.set(b, HEADER_LEN);
  return buf;
}

// the packet at u8[off..end); throws when it is malformed
function decodeOne(u8, off, end) {
  if (end - off < HEADER_LEN) throw new Error('packet shorter than its header');
  const v = new DataView(u8.buffer, u8.byteOffset + off, HEADER_LEN);
  const len = v.getInt32(0), hlen = v.getInt16(4);
  if (hlen !== HEADER_LEN) throw new Error(`header length ${hlen}, not 16`);
  if (len < HEADER_LEN || len > end - off) throw new Error(`bad packet length ${len}`);
  return { len, ver: v.getInt16(6), op: v.getInt32(8), seq: v.getInt32(12),
           body: u8.subarray(off + HEADER_LEN, off + len) };
}

// the packets in an ArrayBuffer or Uint8Array: one, or an op-9 batch opened
// into its inner packets (goim v2 keeps the batch header on WebSocket).
// Throws on a malformed packet.
export function decodePackets(data) {
  const u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
  const out = [];
  const one = (off, end) => decodeOne(u8, off, end);
  const outer = one(0, u8.length);
  if (outer.len !== u8.length) throw new Error('packet length differs from its frame length');
  if (outer.op !== OP.RAW) return [outer];
  const base = HEADER_LEN;
  for (let off = base; off < u8.length; ) {
    const p = one(off, u8.length);
    out.push(p);
    off += p.len;
  }
  return out;
}

// op 19's body: seq (uint64 BE) | n (1 byte, 1..64) | id (n ASCII bytes) |
// a whole packet, the push. Returns { seq, id, packet }; seq is a Number
// (exact below 2^53: job's are milliseconds x 1000). Throws when malformed.
export function decodeEnsure(body) {
  if (body.length < 9) throw new Error('op 19 shorter than its seq and id');
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const seq = Number(v.getBigUint64(0));
  const n = body[8];
  if (n < 1 || n > ENSURE_ID_MAX || body.length < 9 + n) throw new Error(`op 19 id length ${n}`);
  const idBytes = body.subarray(9, 9 + n);
  if (idBytes.some((b) => b < 0x20 || b > 0x7e || b === 0x2c)) {
    throw new Error('op 19 id not printable ASCII, or with a comma');
  }
  const packet = decodeOne(body, 9 + n, body.length);
  if (9 + n + packet.len !== body.length) throw new Error('op 19: bytes after its message');
  if (packet.op === OP.RAW || packet.op === OP.ENSURE) throw new Error(`op 19 holding op ${packet.op}`);
  return { seq, id: String.fromCharCode(...idBytes), packet };
}

// op 20's body: stream (1 byte: 0 the room's, 1 the broadcasts') | epoch
// (uint64 BE) | seq (uint64 BE) | a whole packet. Returns { stream, epoch,
// seq, pos: "EPOCH:SEQ", packet }; epoch and seq are Numbers (job's
// epochs are microseconds: exact below 2^53). Throws when malformed.
export function decodePosition(body) {
  if (body.length < 17 + HEADER_LEN) throw new Error('op 20 shorter than its position');
  if (body[0] > 1) throw new Error(`op 20 stream ${body[0]}`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const epoch = Number(v.getBigUint64(1));
  const seq = Number(v.getBigUint64(9));
  if (!epoch) throw new Error('op 20 epoch 0');
  const packet = decodeOne(body, 17, body.length);
  if (17 + packet.len !== body.length) throw new Error('op 20: bytes after its message');
  if (packet.op === OP.RAW || packet.op === OP.POSITION) throw new Error(`op 20 holding op ${packet.op}`);
  return { stream: body[0] ? 'all' : 'room', epoch, seq, pos: `${epoch}:${seq}`, packet };
}

// "EPOCH:SEQ" -> [epoch, seq], or null
function parsePos(pos) {
  const m = typeof pos === 'string' && /^(\d+):(\d+)$/.exec(pos);
  return m && Number(m[1]) ? [Number(m[1]), Number(m[2])] : null;
}

// gRPC-style backoff, as goim's NodesReply describes it
export function backoffDelay(attempt, b = DEFAULTS.backoff) {
  let d = b.base_delay;
  for (let i = 0; i < attempt && d < b.max_delay; i++) d *= b.factor;
  d = Math.min(d, b.max_delay);
  d *= 1 + b.jitter * (Math.random() * 2 - 1);
  return Math.max(0, d);
}

export class GoimClient {
  constructor(opts = {}) {
    this.opts = { platform: 'web', accepts: [1000, 1001, 1002], key: '',
                  room: '', ...opts };
    this.mid = this.opts.mid ?? 0;
    this.key = this.opts.key;
    this.room = this.opts.room;
    this.accepts = [...this.opts.accepts];
    this.heartbeatSecs = this.opts.heartbeat ?? DEFAULTS.heartbeat;
    this.heartbeatMax = this.opts.heartbeatMax ?? DEFAULTS.heartbeatMax;
    this.backoff = { ...DEFAULTS.backoff, ...(this.opts.backoff || {}) };
    this.state = 'idle';
    this.online = null;
    this.attempts = 0;
    this.connects = 0;
    this.ws = null;
    this.seq = 0;
    this.pending = new Map();
    this.listeners = new Map();
    this.hbTimer = null;
    this.retryTimer = null;
    this.lastReply = 0;
    this.stopped = true;
    this.nodes = null;
    this.session = null;    // op 8's body: {mid, key, room_id}, when the server sends it
    // ensure messages (opts.ack): ids seen, oldest first, kept across
    // reconnects (and in sessionStorage), and ids to acknowledge
    this.ack = !!this.opts.ack;
    this.seenMax = this.opts.ackSeen ?? DEFAULTS.ackSeen;
    this.seenKey = this.opts.ackStorage ?? `goim.ack.${this.mid}`;
    this.seen = new Set();
    this.seenDirty = false;
    this.acks = [];
    this.ackTimer = null;
    this.ackStats = { ensure: 0, dups: 0, acked: 0 };
    if (this.ack) this.loadSeen();
    // room recovery (opts.recover): the last position seen in each room
    // (most recent last) and in the broadcasts, kept in sessionStorage
    this.recover = !!this.opts.recover;
    this.posKey = this.opts.recoverStorage ?? `goim.pos.${this.mid}`;
    this.roomPos = new Map();
    this.allPos = null;
    this.posRoom = this.room;   // the room op 20's room stream is of
    this.recoverStats = { positioned: 0, dups: 0, recovered: 0, gaps: 0 };
    this.asked = { room: false, all: false };
    if (this.recover) this.loadPos();
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, detail, ...more) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(detail, ...more); } catch (e) { console.error(e); }
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, attempt: this.attempts, ...extra });
  }

  // connect (again); resolves once the first connection attempt started
  async connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    await this.loadNodes();
    if (!this.stopped) this.open();
  }

  // /goim/nodes/weighted: heartbeat, backoff and addresses, when logic has it
  async loadNodes() {
    const url = this.opts.nodesUrl;
    if (!url || typeof fetch !== 'function') return;
    try {
      const r = await fetch(url, { cache: 'no-store' });
      const j = await r.json();
      if (!r.ok || j.code !== 0 || !j.data) throw new Error(j.message || r.status);
      const d = j.data;
      this.nodes = d;
      if (this.opts.heartbeat == null && d.heartbeat > 0) this.heartbeatSecs = d.heartbeat;
      if (this.opts.heartbeatMax == null && d.heartbeat_max > 0) this.heartbeatMax = d.heartbeat_max;
      if (d.backoff && !this.opts.backoff) this.backoff = { ...DEFAULTS.backoff, ...d.backoff };
    } catch (e) {
      this.emit('error', { error: e, where: 'nodes' });
    }
  }

  // the URL of the current connection
  url() {
    return this.currentUrl || this.pickUrl();
  }

  // opts.url; else the nodes logic named, the next one on each reconnect
  // (wss on an https page when logic gives a wss_port); else this host
  pickUrl() {
    if (this.opts.url) return this.opts.url;
    const n = this.nodes;
    const l = globalThis.location;
    const secure = l && l.protocol === 'https:';
    if (n && n.nodes && n.nodes.length && (secure ? n.wss_port : n.ws_port)) {
      const host = n.nodes[(Math.max(this.connects, 1) - 1) % n.nodes.length];
      return `${secure ? 'wss' : 'ws'}://${host}:${secure ? n.wss_port : n.ws_port}/sub`;
    }
    return `${secure ? 'wss' : 'ws'}://${l ? l.hostname : '127.0.0.1'}:3102/sub`;
  }

  token() {
    const resume = this.recover ? this.resumeFields() : {};
    if (typeof this.opts.token === 'string') {
      // a JWT is the business's: the client's own options follow it
      return this.recover ? `${this.opts.token} ${JSON.stringify(resume)}` : this.opts.token;
    }
    return JSON.stringify({ mid: this.mid, key: this.key, room_id: this.room,
                            platform: this.opts.platform, accepts: this.accepts,
                            ...(this.opts.token || {}), ...resume });
  }

  // what the auth names to resume from (docs/protocol.md "Room positions")
  resumeFields() {
    const f = { recover: true };
    // a signed token enters its own room; restore() moves on from there
    const room = typeof this.opts.token === 'string' ? this.opts.room : this.room;
    if (this.roomPos.has(room)) f.room_pos = this.roomPos.get(room);
    if (this.allPos) f.all_pos = this.allPos;
    this.asked = { room: !!f.room_pos, all: !!f.all_pos };
    return f;
  }

  open() {
    this.teardown();
    this.connects++;
    this.currentUrl = this.pickUrl();
    this.setState('connecting', { url: this.currentUrl });
    let ws;
    try {
      ws = new WebSocket(this.currentUrl);
    } catch (e) {
      this.emit('error', { error: e, where: 'connect' });
      this.retry();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.setState('authenticating');
      this.send(OP.AUTH, this.token());
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onerror = () => this.emit('error', { error: new Error('WebSocket error'), where: 'socket' });
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.teardown();
      this.emit('close', { code: ev.code, reason: ev.reason });
      if (this.stopped) this.setState('closed');
      else this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempts, this.backoff);
    this.attempts++;
    this.setState('reconnecting', { delay });
    this.retryTimer = setTimeout(() => { if (!this.stopped) this.open(); }, delay * 1000);
  }

  teardown() {
    clearInterval(this.hbTimer);
    this.hbTimer = null;
    // ids not acked yet: the server resends them to the next connection
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.acks = [];
    this.saveSeen();
    for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(new Error('connection closed')); }
    this.pending.clear();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try { ws.close(); } catch (e) { /* already closed */ }
    }
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.acks.length) this.flushAcks();
    this.teardown();
    this.setState('closed');
  }

  send(op, body = '') {
    if (!this.ws || this.ws.readyState !== 1) throw new Error('not connected');
    const seq = ++this.seq;
    this.ws.send(encodePacket(op, seq, body));
    return seq;
  }

  heartbeat() {
    if (this.state !== 'connected' || !this.ws || this.ws.readyState !== 1) return;
    if (this.lastReply && Date.now() - this.lastReply > this.heartbeatSecs * this.heartbeatMax * 1000) {
      // no reply for heartbeat x heartbeat_max: the link is dead
      this.emit('error', { error: new Error('heartbeat timeout'), where: 'heartbeat' });
      this.ws && this.ws.close();
      return;
    }
    this.send(OP.HEARTBEAT);
  }

  // ops 12/14/16: resolve with the reply body once the server answers
  request(op, body) {
    return new Promise((resolve, reject) => {
      let seq;
      try { seq = this.send(op, body); } catch (e) { reject(e); return; }
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`no reply to op ${op}`));
      }, DEFAULTS.requestTimeout * 1000);
      this.pending.set(seq, { op, resolve, reject, timer });
    });
  }

  // an opaque token (a signed JWT) always carries the room and accepts it
  // was made with: after a reconnect, redo the changes made since
  restore() {
    if (typeof this.opts.token !== 'string') return;
    const base = this.opts.accepts;
    const added = this.accepts.filter((o) => !base.includes(o));
    const removed = base.filter((o) => !this.accepts.includes(o));
    const ignore = () => {};
    if (this.room !== this.opts.room) this.request(OP.CHANGE_ROOM, this.roomBody(this.room)).catch(ignore);
    if (added.length) this.request(OP.SUB, added.join(',')).catch(ignore);
    if (removed.length) this.request(OP.UNSUB, removed.join(',')).catch(ignore);
  }

  // op 12's body: the room, and with recover the last position seen there
  roomBody(room) {
    if (!this.recover) return room;
    this.asked = { ...this.asked, room: this.roomPos.has(room) };
    return this.roomPos.has(room) ? `${room}\n${this.roomPos.get(room)}` : room;
  }

  async changeRoom(room) {
    if (this.state !== 'connected') { this.room = room; return room; }
    await this.request(OP.CHANGE_ROOM, this.roomBody(room));
    this.room = room;
    this.online = null;
    this.emit('room', { room });
    this.heartbeat();
    return room;
  }

  async sub(ops) {
    const list = [].concat(ops).map(Number);
    if (this.state === 'connected') await this.request(OP.SUB, list.join(','));
    for (const o of list) if (!this.accepts.includes(o)) this.accepts.push(o);
    return this.accepts;
  }

  async unsub(ops) {
    const list = [].concat(ops).map(Number);
    if (this.state === 'connected') await this.request(OP.UNSUB, list.join(','));
    this.accepts = this.accepts.filter(o => !list.includes(o));
    return this.accepts;
  }

  // ensure ids: sessionStorage keeps them across a reload of the page
  storage(key = this.seenKey) {
    if (key === false) return null;
    try { return globalThis.sessionStorage || null; } catch (e) { return null; }
  }

  loadPos() {
    const st = this.storage(this.posKey);
    if (!st) return;
    try {
      const v = JSON.parse(st.getItem(this.posKey) || '{}');
      for (const [room, pos] of Object.entries(v.rooms || {})) if (parsePos(pos)) this.roomPos.set(room, pos);
      if (parsePos(v.all)) this.allPos = v.all;
    } catch (e) { /* unreadable: start afresh */ }
  }

  savePos() {
    const st = this.storage(this.posKey);
    if (!st) return;
    try {
      st.setItem(this.posKey, JSON.stringify({ rooms: Object.fromEntries(this.roomPos), all: this.allPos }));
    } catch (e) { /* full or refused */ }
  }

  setPos(stream, room, pos) {
    if (stream === 'all') { this.allPos = pos; return; }
    this.roomPos.delete(room);
    this.roomPos.set(room, pos);
    const max = this.opts.recoverRooms ?? DEFAULTS.recoverRooms;
    if (this.roomPos.size > max) this.roomPos.delete(this.roomPos.keys().next().value);
  }

  // op 20: a room message or broadcast with its position; one seen
  // already (back on a worker behind the one left) is dropped
  onPosition(e) {
    this.recoverStats.positioned++;
    const last = parsePos(e.stream === 'all' ? this.allPos : this.roomPos.get(this.posRoom));
    if (last && last[0] === e.epoch && e.seq <= last[1]) { this.recoverStats.dups++; return; }
    this.setPos(e.stream, this.posRoom, e.pos);
    this.posDirty = true;
    this.onPacket(e.packet, { stream: e.stream, pos: e.pos, epoch: e.epoch, seq: e.seq });
  }

  // op 21: {stream, room, pos, recovered, missed}; positions go on from
  // pos either way: what was not recovered is the application's to reload
  onRecovery(body) {
    let r;
    try { r = JSON.parse(decoder.decode(body)); } catch (e) { return; }
    if (!r || (r.stream !== 'room' && r.stream !== 'all')) return;
    if (r.stream === 'room' && typeof r.room === 'string') this.posRoom = r.room;
    if (parsePos(r.pos)) this.setPos(r.stream, this.posRoom, r.pos);
    // asked: a position was named for this stream (else nothing to recover)
    r.asked = !!(this.asked && this.asked[r.stream]);
    if (r.recovered) this.recoverStats.recovered++;
    else if (r.asked) this.recoverStats.gaps++;
    if (this.asked) this.asked[r.stream] = false;
    this.savePos();
    this.emit('recovery', r);
  }

  loadSeen() {
    const st = this.storage();
    if (!st) return;
    try {
      const ids = JSON.parse(st.getItem(this.seenKey) || '[]');
      if (!Array.isArray(ids)) return;
      for (const id of ids.slice(-this.seenMax)) if (typeof id === 'string') this.seen.add(id);
    } catch (e) { /* unreadable: start afresh */ }
  }

  saveSeen() {
    const st = this.seenDirty && this.storage();
    this.seenDirty = false;
    if (!st) return;
    try { st.setItem(this.seenKey, JSON.stringify([...this.seen])); } catch (e) { /* full or refused */ }
  }

  // false when id was seen before; else it is remembered, the oldest of
  // more than seenMax forgotten
  remember(id) {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > this.seenMax) this.seen.delete(this.seen.values().next().value);
    this.seenDirty = true;
    return true;
  }

  queueAck(id) {
    this.acks.push(id);
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), ACK_BATCH_MS);
  }

  // the ids queued, in op 18s of at most ACK_BODY_MAX bytes; the ids seen
  // are saved first, so that nothing acked can come back as new
  flushAcks() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const ids = this.acks;
    this.acks = [];
    this.saveSeen();
    if (!this.ws || this.ws.readyState !== 1) return;
    let body = '';
    for (const id of ids) {
      if (body && body.length + 1 + id.length > ACK_BODY_MAX) { this.send(OP.ACK, body); body = ''; }
      body = body ? `${body},${id}` : id;
    }
    if (body) this.send(OP.ACK, body);
    this.ackStats.acked += ids.length;
  }

  // op 19: ack the id, drop a resend, else the message inside as a push
  onEnsure(e) {
    this.ackStats.ensure++;
    this.queueAck(e.id);
    if (!this.remember(e.id)) { this.ackStats.dups++; return; }
    this.onPacket(e.packet, { id: e.id, seq: e.seq });
  }

  onFrame(data) {
    let packets;
    try {
      if (typeof data === 'string') throw new Error('text frame');
      packets = decodePackets(data);
      // a malformed op 19 or 20 drops the frame, like any malformed packet
      if (this.ack) for (const p of packets) if (p.op === OP.ENSURE) p.ensure = decodeEnsure(p.body);
      if (this.recover) for (const p of packets) if (p.op === OP.POSITION) p.position = decodePosition(p.body);
    } catch (e) {
      this.emit('error', { error: e, where: 'frame' });
      this.ws && this.ws.close(1002);
      return;
    }
    for (const p of packets) this.onPacket(p);
    if (this.posDirty) { this.posDirty = false; this.savePos(); }
  }

  onPacket(p, ensure) {
    this.lastReply = Date.now();
    switch (p.op) {
    case OP.ENSURE:
      if (!p.ensure) break;     // without opts.ack: an unknown op, as in goim
      this.onEnsure(p.ensure);
      return;
    case OP.POSITION:
      if (!p.position) break;   // without opts.recover: unknown, as in goim
      this.onPosition(p.position);
      return;
    case OP.RECOVERY:
      if (this.recover) this.onRecovery(p.body);
      return;
    case OP.AUTH_REPLY:
      if (this.state === 'authenticating') {
        this.attempts = 0;
        this.session = null;
        if (p.body.length) {
          // ngx_goim says who we are: {"mid":…,"key":…,"room_id":…} (goim: empty)
          try { this.session = JSON.parse(decoder.decode(p.body)); } catch (e) { /* goim */ }
          if (this.session && typeof this.session.key === 'string') this.key = this.session.key;
        }
        this.posRoom = this.session && typeof this.session.room_id === 'string'
                       ? this.session.room_id : this.room;
        // the first op 18 of a connection declares that it acknowledges
        if (this.ack) this.send(OP.ACK);
        this.setState('connected', { url: this.url(), session: this.session });
        this.heartbeat();
        this.hbTimer = setInterval(() => this.heartbeat(), this.heartbeatSecs * 1000);
        this.restore();
      }
      return;
    case OP.HEARTBEAT_REPLY:
      if (p.body.length === 4) {
        const n = new DataView(p.body.buffer, p.body.byteOffset, 4).getInt32(0);
        this.online = n;
        this.emit('online', n);
      }
      return;
    }
    const pending = p.seq !== 0 && this.pending.get(p.seq);
    if (pending) {
      // ops 13/15/17, or the plain echo a server without them answers with
      this.pending.delete(p.seq);
      clearTimeout(pending.timer);
      // the room stream's op 20s are of the new room from here on
      if (p.op === OP.CHANGE_ROOM_REPLY) this.posRoom = decoder.decode(p.body);
      pending.resolve({ op: p.op, body: decoder.decode(p.body) });
      return;
    }
    if (p.seq !== 0) return;    // a late reply
    const m = { op: p.op, ver: p.ver, seq: p.seq, body: p.body, text: decoder.decode(p.body) };
    if (ensure) this.emit('message', m, ensure);   // {id, seq} or {stream, pos, ...}
    else this.emit('message', m);
  }
}
