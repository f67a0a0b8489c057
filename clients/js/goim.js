// goim.js: a goim v2 client for browsers, over WebSocket (binary frames,
// one packet per frame), Server-Sent Events or long-poll (comet's
// goim_comet_sse and goim_comet_poll locations, read with fetch()). An ES
// module with no dependencies and no build step:
//
//   import { GoimClient } from './goim.js';
//   const c = new GoimClient({ url: 'ws://127.0.0.1:3102/sub', mid: 123,
//                              room: 'live://1000', accepts: [1000] });
//   c.on('message', m => console.log(m.op, m.text));
//   c.on('online', n => console.log('room online', n));
//   c.on('state', s => console.log(s.state, s.transport));
//   c.connect();
//
// With { transport: 'auto' } (the default) it tries WebSocket first, then
// SSE, then long-poll, each after fallbackAfter (2) failed attempts in a
// row, and keeps the one that worked for the page's life (sessionStorage).
// The application sees the same events and methods on each.
//
// With { ack: true } it acknowledges ensure messages (ops 18 and 19, not
// in goim): each op 19's id is acked, a resend seen before is dropped, and
// the message inside comes as a 'message' event with { id, seq } as its
// second argument. With { recover: true } room messages and broadcasts
// come with their positions (op 20, or the SSE event ids): the last ones
// are named again on reconnect and on a change back to a room, and what
// was missed comes first, then a 'recovery' event says whether that was
// all of it.
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
  openTimeout: 10,            // seconds from an attempt's start to its op 8
  fallbackAfter: 2,           // failed attempts in a row before 'auto' moves on
  pollTimeout: 45,            // seconds a held poll may take (comet holds 25)
  streamTimeout: 60,          // seconds of silence that end an SSE stream (comet pings every 25)
  eventMax: 1 << 20,          // characters of one SSE event, at most
  controlMax: 64,             // control calls waiting to be made, at most
});

// characters of one long-poll answer, at most (comet's are within 1 MB)
const ANSWER_MAX = 4 << 20;

// the transports, in the order 'auto' tries them
export const TRANSPORTS = Object.freeze(['ws', 'sse', 'poll']);
const NAMES = Object.freeze({ ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' });
// what a control call can send for an SSE or long-poll session
const CONTROL_OPS = Object.freeze([OP.CHANGE_ROOM, OP.SUB, OP.UNSUB, OP.ACK]);

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

// text/event-stream, read as it comes: feed() takes the text so far and
// returns the events it completed, { event, id, data } (id null when the
// event has none). Comments and fields other than event, id and data are
// skipped, as EventSource does. Throws when one event outgrows max
// characters (a stream that never ends its event), so nothing grows
// without bound.
export class SseParser {
  constructor(max = DEFAULTS.eventMax) {
    this.max = max;
    this.rest = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.id = null;
    this.data = null;
    this.size = 0;
  }

  feed(text) {
    const out = [];
    let buf = this.rest + text;
    let start = 0;
    for (let lf; (lf = buf.indexOf('\n', start)) >= 0; start = lf + 1) {
      const end = lf > start && buf.charCodeAt(lf - 1) === 13 ? lf - 1 : lf;
      this.line(buf.slice(start, end), out);
    }
    this.rest = buf.slice(start);
    buf = null;
    if (this.size + this.rest.length > this.max) {
      throw new Error(`an SSE event longer than ${this.max} characters`);
    }
    return out;
  }

  line(l, out) {
    if (l === '') {
      if (this.data !== null) out.push({ event: this.event, id: this.id, data: this.data });
      this.reset();
      return;
    }
    if (l.charCodeAt(0) === 58) return;          // ':' a comment (comet's ping)
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.size += value.length;
    if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
    else if (field === 'data') this.data = this.data === null ? value : `${this.data}\n${value}`;
  }
}

// RFC 4648 base64 (comet's .b64 events) into bytes; throws on bad input
export function decodeBase64(s) {
  if (s.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error('event data is not base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// an SSE event as the packet it was: { op, ver, seq, body, id }; null for
// an event that is not a goim operation (none is sent: skipped).
// Throws when a .b64 event's data is not base64.
export function eventPacket(ev) {
  let name = ev.event;
  const b64 = name.endsWith('.b64');
  if (b64) name = name.slice(0, -4);
  if (!/^-?\d{1,10}$/.test(name)) return null;
  const body = b64 ? decodeBase64(ev.data) : encoder.encode(ev.data);
  return { op: Number(name) | 0, ver: VERSION, seq: 0, body, id: ev.id };
}

// an SSE id, "ROOM_EPOCH:ROOM_SEQ/ALL_EPOCH:ALL_SEQ" (either side may be
// empty) -> [room, all] ('' for an empty side), or null
export function parseEventId(id) {
  const m = typeof id === 'string' && /^((\d+):(\d+))?\/((\d+):(\d+))?$/.exec(id);
  return m ? [m[1] || '', m[4] || ''] : null;
}

// an HTTP answer that is not the one wanted: { goim, code, message }, goim
// true when it is comet's own JSON envelope ({"code":-STATUS,...}), i.e.
// comet was reached and said no (a proxy's error page is not)
async function answerOf(res) {
  let text = '';
  try { text = await res.text(); } catch (e) { /* cut short */ }
  try {
    const j = JSON.parse(text);
    if (j && typeof j.code === 'number' && j.code < 0 && typeof j.message === 'string') {
      return { goim: true, code: j.code, message: j.message };
    }
  } catch (e) { /* not JSON */ }
  return { goim: false, code: -res.status, message: `HTTP ${res.status}` };
}

const header = (res, name) => (res.headers && res.headers.get(name)) || null;
// what X-Goim-Token may carry; a token with other characters goes as the
// token argument (URL-escaped UTF-8), where comet looks third
const headerSafe = (s) => /^[\x20-\x7e]*$/.test(s);

// a stream that is not well formed (an endless event): where: 'frame'
function frame(fn) {
  try { return fn(); } catch (e) { e.where = 'frame'; throw e; }
}

// the events of an HTTP answer, handed to fn(events) as they complete;
// resolves at the end of the body, rejects when reading or parsing fails
async function readEvents(res, parser, fn, onBytes) {
  if (!res.body || typeof res.body.getReader !== 'function') {
    const text = await res.text();
    onBytes();
    fn(frame(() => parser.feed(text)));
    return;
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder('utf-8');
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onBytes();
      const evs = frame(() => parser.feed(dec.decode(value, { stream: true })));
      if (evs.length) fn(evs);
    }
  } catch (e) {
    try { await reader.cancel(); } catch (x) { /* gone */ }
    throw e;
  } finally {
    try { reader.releaseLock(); } catch (e) { /* still reading */ }
  }
}

// One attempt's connection to comet, whatever the transport: the client
// hands it packets to send (send) and hears what comet says through
// c.onFrame / c.onLinkEvents / c.onLinkOpen / c.onLinkClose, which ignore a
// link that is no longer the client's. close() ends it without a word back.

class WsLink {
  constructor(c, url) {
    this.c = c;
    this.kind = 'ws';
    this.url = url;
    this.opened = false;
    this.authed = false;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => { this.opened = true; c.onLinkOpen(this); };
    ws.onmessage = (ev) => c.onFrame(this, ev.data);
    ws.onerror = () => c.emit('error', { error: new Error('WebSocket error'), where: 'socket' });
    // never open: the transport failed; open, then closed without op 8:
    // comet refused the token (it closes after op 7), not a transport failure
    ws.onclose = (ev) => c.onLinkClose(this, { code: ev.code, reason: ev.reason, failed: !this.opened });
  }

  ready() { return this.ws.readyState === 1; }

  send(op, seq, body) { this.ws.send(encodePacket(op, seq, body)); }

  // ask the socket to close: its close event reopens
  drop(code) {
    try { this.ws.close(code); } catch (e) { this.ws.close(); }   // browsers allow 1000 and 3000-4999 only
  }

  close() {
    const ws = this.ws;
    ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
    try { ws.close(); } catch (e) { /* already closed */ }
  }
}

// SSE and long-poll: fetch() requests, and the control calls that make
// what the client would send (ops 12, 14, 16, 18), one at a time so they
// reach comet in the order they were made
class HttpLink {
  constructor(c, kind, url) {
    this.c = c;
    this.kind = kind;
    this.url = url;
    this.opened = false;
    this.authed = false;
    this.closed = false;
    this.session = null;
    this.timer = null;
    this.calls = [];
    this.calling = false;
    this.abort = null;
  }

  ready() { return !this.closed && this.session !== null; }

  // a request, given up (aborted) after timeout seconds, its body's
  // reading included: settle() once it is read
  request(url, init = {}, timeout = 0) {
    const ctl = new AbortController();
    this.abort = () => ctl.abort();
    this.settle();
    if (timeout) this.timer = setTimeout(() => ctl.abort(), timeout * 1000);
    return fetch(url, { cache: 'no-store', credentials: 'same-origin', ...init, signal: ctl.signal });
  }

  settle() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  // the opening request: the token (and where recovery resumes from)
  opening(extra = {}) {
    const c = this.c;
    const token = c.token();
    const q = new URLSearchParams(extra);
    const last = c.lastEventId();
    const headers = { Accept: 'text/event-stream' };
    if (headerSafe(token)) headers['X-Goim-Token'] = token;
    else q.set('token', token);
    // ids go on from the position named (comet's ids do)
    this.lastId = last ? parseEventId(last) : ['', ''];
    // digits, ':' and '/': as they are (a query may hold them, and a comet
    // before the long-poll one read the argument without unescaping it)
    const qs = [q.toString(), last ? `last_event_id=${last}` : ''].filter(Boolean).join('&');
    return [qs ? `${this.url}${this.url.includes('?') ? '&' : '?'}${qs}` : this.url, { headers }];
  }

  // a non-200 answer: comet's refusal ends the attempt, anything else is
  // the transport failing (no such location, a proxy's error)
  async refused(res, what) {
    const a = await answerOf(res);
    this.end({ code: res.status, reason: `${what}: ${res.status} ${a.message}`, failed: !a.goim });
  }

  end(info) {
    if (this.closed) return;
    this.closed = true;
    this.settle();
    if (this.abort) this.abort();
    this.c.onLinkClose(this, info);
  }

  events(evs) { if (!this.closed) this.c.onLinkEvents(this, evs); }

  send(op, seq, body) {
    if (!CONTROL_OPS.includes(op)) {
      throw new Error(`op ${op} cannot be sent over ${NAMES[this.kind]}: only 12, 14, 16 and 18 (control calls)`);
    }
    if (this.calls.length >= this.c.controlMax) throw new Error('too many control calls waiting');
    this.calls.push({ op, seq, body });
    if (!this.calling) this.pump();
  }

  async pump() {
    this.calling = true;
    while (this.calls.length) {
      const call = this.calls.shift();
      // acks still go after close(): what the page saw must not come back
      if (this.closed && call.op !== OP.ACK) continue;
      const url = `${this.c.controlUrl()}?session=${encodeURIComponent(this.session)}&op=${call.op}`;
      try {
        const r = await fetch(url, { method: 'POST', body: call.body, cache: 'no-store', credentials: 'same-origin',
                                     headers: { 'Content-Type': 'text/plain' }, keepalive: call.op === OP.ACK });
        if (r.status !== 202) {
          const a = await answerOf(r);
          this.c.onControlFailed(this, call, r.status, a.message);
        }
      } catch (e) {
        this.c.onControlFailed(this, call, 0, e.message);
      }
    }
    this.calling = false;
  }

  close() {
    this.closed = true;
    this.settle();
    if (this.abort) this.abort();
  }
}

// SSE: one GET whose answer is the stream (comet's goim_comet_sse)
class SseLink extends HttpLink {
  constructor(c, url) {
    super(c, 'sse', url);
    this.run();
  }

  async run() {
    const [url, init] = this.opening();
    let res;
    try {
      res = await this.request(url, init);
    } catch (e) {
      this.end({ code: 0, reason: `SSE: ${e.message}`, failed: true });
      return;
    }
    if (this.closed) return;
    if (res.status !== 200) { await this.refused(res, 'SSE'); return; }
    if (!/^text\/event-stream/i.test(header(res, 'content-type') || '')) {
      this.end({ code: 200, reason: `SSE: answered ${header(res, 'content-type')}`, failed: true });
      return;
    }
    this.opened = true;
    this.c.onLinkOpen(this);
    const parser = new SseParser(this.c.eventMax);
    try {
      await readEvents(res, parser, (evs) => this.events(evs), () => this.c.onLinkBytes(this));
      this.end({ code: 200, reason: 'the stream ended', failed: !this.authed });
    } catch (e) {
      if (e.where === 'frame' && !this.closed) this.c.emit('error', { error: e, where: 'frame' });
      this.end({ code: 200, reason: `SSE: ${e.message}`, failed: !this.authed });
    }
  }
}

// long-poll: GET opens a session and answers at once; each poll names the
// events it has (cursor) and is held until there are more
// (comet's goim_comet_poll, docs/protocol.md "Long-poll subscribers")
class PollLink extends HttpLink {
  constructor(c, url) {
    super(c, 'poll', url);
    this.cursor = 0;
    this.run();
  }

  // one answer's events, handed on once the whole answer is read: a body
  // cut short hands on nothing and the cursor stays, so the next poll gets
  // it all again (comet resends a room batch whole: a cursor inside one
  // would bring doubles)
  async answer(res) {
    const all = [];
    let size = 0;
    const parser = new SseParser(this.c.eventMax);
    await readEvents(res, parser, (evs) => {
      for (const ev of evs) size += ev.data.length;
      if (size > ANSWER_MAX) throw Object.assign(new Error(`a poll answer over ${ANSWER_MAX} characters`), { where: 'frame' });
      all.push(...evs);
    }, () => this.c.onLinkBytes(this));
    const n = Number(header(res, 'x-goim-cursor'));
    this.cursor = Number.isSafeInteger(n) && n >= this.cursor ? n : this.cursor + all.length;
    this.events(all);
  }

  async run() {
    const c = this.c;
    const [url, init] = this.opening();
    let res;
    try {
      res = await this.request(url, init, c.openTimeout);
    } catch (e) {
      this.end({ code: 0, reason: `long-poll: ${e.message}`, failed: true });
      return;
    }
    if (this.closed) return;
    if (res.status !== 200) { await this.refused(res, 'long-poll'); return; }
    if (!/^text\/event-stream/i.test(header(res, 'content-type') || '')) {
      this.end({ code: 200, reason: `long-poll: answered ${header(res, 'content-type')}`, failed: true });
      return;
    }
    // else op 8's session (a key a header cannot carry)
    this.session = header(res, 'x-goim-session');
    this.opened = true;
    c.onLinkOpen(this);
    try {
      await this.answer(res);
      this.settle();
    } catch (e) {
      if (e.where === 'frame' && !this.closed) c.emit('error', { error: e, where: 'frame' });
      this.end({ code: 200, reason: `long-poll: ${e.message}`, failed: true });
      return;
    }
    if (this.closed) return;
    if (!this.authed || !this.session) {
      this.end({ code: 200, reason: 'long-poll: no auth reply (op 8) with a session in the answer', failed: true });
      return;
    }
    // polls until the session ends; a lost answer is asked for again
    // (the cursor makes that safe) up to twice, then it authenticates anew
    let errors = 0;
    while (!this.closed) {
      const u = `${this.url}${this.url.includes('?') ? '&' : '?'}session=${encodeURIComponent(this.session)}&cursor=${this.cursor}`;
      let why = null;
      try {
        res = await this.request(u, {}, c.pollTimeout);
        if (this.closed) return;
        // a 200 of something else (a portal, a proxy's page) is no answer:
        // polled again at once it would spin
        if (res.status === 200 && /^text\/event-stream/i.test(header(res, 'content-type') || '')
            && header(res, 'x-goim-cursor') !== null) {
          await this.answer(res);
          this.settle();
          errors = 0;
          continue;
        }
        const a = await answerOf(res);
        this.settle();
        if (a.goim && res.status !== 503) {
          // 404: the session is gone (expired, kicked, a reload); 400/403: not ours
          this.end({ code: res.status, reason: `long-poll: ${res.status} ${a.message}`, failed: false });
          return;
        }
        why = `${res.status} ${a.message}`;
      } catch (e) {
        if (this.closed) return;
        if (e.where === 'frame') {
          c.emit('error', { error: e, where: 'frame' });
          this.end({ code: 200, reason: `long-poll: ${e.message}`, failed: false });
          return;
        }
        why = e.message;
      }
      if (++errors > 2) {
        this.end({ code: 0, reason: `long-poll: ${why}`, failed: false });
        return;
      }
      c.emit('error', { error: new Error(`poll: ${why}`), where: 'poll' });
      await new Promise((r) => setTimeout(r, backoffDelay(errors - 1, c.backoff) * 1000));
    }
  }
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
    for (const k of ['openTimeout', 'fallbackAfter', 'pollTimeout', 'streamTimeout', 'eventMax', 'controlMax']) {
      this[k] = this.opts[k] ?? DEFAULTS[k];
    }
    this.state = 'idle';
    this.online = null;
    this.attempts = 0;
    this.connects = 0;
    this.ws = null;
    this.link = null;
    this.seq = 0;
    this.pending = new Map();
    this.listeners = new Map();
    this.hbTimer = null;
    this.retryTimer = null;
    this.openTimer = null;
    this.watchTimer = null;
    this.lastReply = 0;
    this.stopped = true;
    this.nodes = null;
    this.session = null;    // op 8's body: {mid, key, room_id}, when the server sends it
    // the transport: 'auto' starts with the one that worked last in this
    // page (sessionStorage), else WebSocket, and moves on after
    // fallbackAfter failed attempts in a row
    this.mode = this.opts.transport ?? 'auto';
    if (this.mode !== 'auto' && !TRANSPORTS.includes(this.mode)) {
      throw new Error(`transport must be 'auto', 'ws', 'sse' or 'poll', not ${JSON.stringify(this.mode)}`);
    }
    this.transportKey = this.opts.transportStorage ?? 'goim.transport';
    this.fails = 0;
    this.transport = this.mode === 'auto' ? this.loadTransport() : this.mode;
    this.onlineBusy = false;
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
    this.resumed = null;        // the positions the last auth named
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
    this.emit('state', { state, attempt: this.attempts, transport: this.transport, ...extra });
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

  // sseUrl, pollUrl, controlUrl: given, else the WebSocket URL's origin
  // (ws -> http, wss -> https) with /sse, /poll, /sse/control
  httpUrl(path) {
    const u = new URL(this.pickUrl());
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    return `${u.origin}${path}`;
  }

  sseUrl() { return this.opts.sseUrl || this.httpUrl('/sse'); }

  pollUrl() { return this.opts.pollUrl || this.httpUrl('/poll'); }

  controlUrl() { return this.opts.controlUrl || this.httpUrl('/sse/control'); }

  // logic's GET /goim/online/room: the online count where there is no
  // heartbeat reply (SSE, long-poll); by default on nodesUrl's origin
  onlineUrl() {
    if (this.opts.onlineUrl !== undefined) return this.opts.onlineUrl || null;
    if (!this.opts.nodesUrl) return null;
    const base = globalThis.location ? globalThis.location.href : undefined;
    return new URL('/goim/online/room', new URL(this.opts.nodesUrl, base)).href;
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
    this.resumed = f;
    return f;
  }

  // SSE's and long-poll's last_event_id: the positions the token names,
  // "ROOM/ALL" (call after token())
  lastEventId() {
    const f = this.recover && this.resumed;
    return f && (f.room_pos || f.all_pos) ? `${f.room_pos || ''}/${f.all_pos || ''}` : null;
  }

  // 'auto': the transport that worked last in this page, else the first
  // this browser has
  loadTransport() {
    let t = null;
    const st = this.storage(this.transportKey);
    try { t = st && st.getItem(this.transportKey); } catch (e) { /* refused */ }
    return TRANSPORTS.includes(t) && this.usable(t) ? t : this.nextTransport(null);
  }

  saveTransport() {
    const st = this.storage(this.transportKey);
    try { if (st) st.setItem(this.transportKey, this.transport); } catch (e) { /* full or refused */ }
  }

  usable(t) {
    if (t === 'ws') return typeof WebSocket === 'function';
    return typeof fetch === 'function' && typeof AbortController === 'function';
  }

  // the transport after t in TRANSPORTS' order (round again after poll)
  nextTransport(t) {
    const i = TRANSPORTS.indexOf(t);
    for (let k = 1; k <= TRANSPORTS.length; k++) {
      const n = TRANSPORTS[(i + k) % TRANSPORTS.length];
      if (this.usable(n)) return n;
    }
    return t || 'ws';
  }

  open() {
    this.teardown();
    this.connects++;
    const t = this.transport;
    let link;
    try {
      this.currentUrl = t === 'ws' ? this.pickUrl() : t === 'sse' ? this.sseUrl() : this.pollUrl();
      this.setState('connecting', { url: this.currentUrl });
      link = t === 'ws' ? new WsLink(this, this.currentUrl)
           : t === 'sse' ? new SseLink(this, this.currentUrl) : new PollLink(this, this.currentUrl);
    } catch (e) {
      this.emit('error', { error: e, where: 'connect' });
      this.failed(e.message);
      this.retry();
      return;
    }
    this.link = link;
    if (t === 'ws') this.ws = link.ws;
    else this.setState('authenticating');   // the request carries the token
    // an attempt with no op 8 in time failed (a proxy that swallows it)
    this.openTimer = setTimeout(() => {
      if (this.link !== link || link.authed) return;
      this.onLinkClose(link, { code: 0, reason: `no auth reply within ${this.openTimeout} s`, failed: true });
    }, this.openTimeout * 1000);
  }

  onLinkOpen(link) {
    if (link !== this.link || link.kind !== 'ws') return;
    this.setState('authenticating');
    this.send(OP.AUTH, this.token());
  }

  onLinkBytes(link) {
    if (link === this.link) this.lastReply = Date.now();
  }

  // the attempt or the connection ended; info.failed: the transport did
  // not work (as opposed to comet refusing the token, or a connection that
  // was up going down)
  onLinkClose(link, info) {
    if (link !== this.link) return;
    link.close();
    this.link = null;
    this.ws = null;
    this.teardown();
    this.emit('close', { code: info.code, reason: info.reason || '', transport: link.kind });
    if (this.stopped) { this.setState('closed'); return; }
    if (!link.authed) {
      if (info.failed) this.failed(info.reason);
      else this.fails = 0;
    }
    this.retry();
  }

  // a failed attempt: 'auto' moves on after fallbackAfter in a row
  failed(reason) {
    if (this.mode !== 'auto' || ++this.fails < this.fallbackAfter) return;
    const from = this.transport;
    const to = this.nextTransport(from);
    this.fails = 0;
    if (to === from) return;
    this.transport = to;
    // the backoff starts over on the new transport
    this.attempts = 0;
    this.emit('fallback', { from, to, reason });
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
    clearInterval(this.watchTimer);
    this.watchTimer = null;
    clearTimeout(this.openTimer);
    this.openTimer = null;
    // ids not acked yet: the server resends them to the next connection
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.acks = [];
    this.saveSeen();
    for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(new Error('connection closed')); }
    this.pending.clear();
    if (this.link) {
      const link = this.link;
      this.link = null;
      this.ws = null;
      link.close();
    }
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.acks.length) this.flushAcks();
    this.teardown();
    this.setState('closed');
  }

  // any packet over WebSocket; over SSE and long-poll ops 12, 14, 16 and
  // 18, as control calls
  send(op, body = '') {
    if (!this.link || !this.link.ready()) throw new Error('not connected');
    const seq = ++this.seq;
    this.link.send(op, seq, body);
    return seq;
  }

  heartbeat() {
    if (this.state !== 'connected' || !this.link || !this.link.ready()) return;
    if (this.link.kind !== 'ws') {
      // no op 2: comet keeps SSE and long-poll sessions alive itself
      this.refreshOnline();
      return;
    }
    if (this.lastReply && Date.now() - this.lastReply > this.heartbeatSecs * this.heartbeatMax * 1000) {
      // no reply for heartbeat x heartbeat_max: the link is dead
      this.emit('error', { error: new Error('heartbeat timeout'), where: 'heartbeat' });
      this.ws && this.ws.close();
      return;
    }
    this.send(OP.HEARTBEAT);
  }

  // an SSE stream silent for streamTimeout (comet writes a comment every
  // goim_comet_sse_ping, 25 s) is dead: reopened
  watch(link) {
    if (link !== this.link || Date.now() - this.lastReply <= this.streamTimeout * 1000) return;
    this.emit('error', { error: new Error(`nothing on the stream for ${this.streamTimeout} s`), where: 'heartbeat' });
    this.onLinkClose(link, { code: 0, reason: 'stream timeout', failed: false });
  }

  // the room's count from logic (SSE, long-poll: no heartbeat reply);
  // one question at a time
  async refreshOnline() {
    const url = this.onlineUrl();
    const room = this.room;
    if (!url || this.onlineBusy || !room || typeof fetch !== 'function') return;
    const i = room.indexOf('://');
    const id = i < 0 ? room : room.slice(i + 3);
    const q = new URLSearchParams({ type: i < 0 ? '' : room.slice(0, i), rooms: id });
    this.onlineBusy = true;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), DEFAULTS.requestTimeout * 1000);
    try {
      const r = await fetch(`${url}${url.includes('?') ? '&' : '?'}${q}`, { cache: 'no-store', signal: ctl.signal });
      const j = await r.json();
      if (!r.ok || j.code !== 0 || !j.data) throw new Error(j.message || `HTTP ${r.status}`);
      const n = Number(j.data[id]);
      if (room === this.room && Number.isFinite(n) && this.state === 'connected') {
        this.online = n;
        this.emit('online', n);
      }
    } catch (e) {
      this.emit('error', { error: e, where: 'online' });
    } finally {
      clearTimeout(timer);
      this.onlineBusy = false;
    }
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

  // a control call comet did not take: its request fails (an op 18's ids
  // come again, unacknowledged)
  onControlFailed(link, call, status, message) {
    const p = this.pending.get(call.seq);
    const error = new Error(`control call op ${call.op}: ${status ? `${status} ${message}` : message}`);
    if (p) {
      this.pending.delete(call.seq);
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.emit('error', { error, where: 'control' });
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
    if (!this.link || !this.link.ready()) return;
    let body = '';
    try {
      for (const id of ids) {
        if (body && body.length + 1 + id.length > ACK_BODY_MAX) { this.send(OP.ACK, body); body = ''; }
        body = body ? `${body},${id}` : id;
      }
      if (body) this.send(OP.ACK, body);
    } catch (e) {
      // not sent: the server resends them, and they are dropped as seen
      this.emit('error', { error: e, where: 'control' });
      return;
    }
    this.ackStats.acked += ids.length;
  }

  // op 19: ack the id, drop a resend, else the message inside as a push
  onEnsure(e) {
    this.ackStats.ensure++;
    this.queueAck(e.id);
    if (!this.remember(e.id)) { this.ackStats.dups++; return; }
    this.onPacket(e.packet, { id: e.id, seq: e.seq });
  }

  // a WebSocket frame
  onFrame(link, data) {
    if (link !== this.link) return;
    let packets;
    try {
      if (typeof data === 'string') throw new Error('text frame');
      packets = decodePackets(data);
      // a malformed op 19 or 20 drops the frame, like any malformed packet
      if (this.ack) for (const p of packets) if (p.op === OP.ENSURE) p.ensure = decodeEnsure(p.body);
      if (this.recover) for (const p of packets) if (p.op === OP.POSITION) p.position = decodePosition(p.body);
    } catch (e) {
      this.emit('error', { error: e, where: 'frame' });
      link.drop(1002);
      return;
    }
    this.lastReply = Date.now();
    for (const p of packets) this.onPacket(p);
    if (this.posDirty) { this.posDirty = false; this.savePos(); }
  }

  // SSE events (a stream's, or a poll answer's): each is a packet; a
  // malformed one (bad base64, a bad op 19 or id) ends the connection,
  // after the ones before it
  onLinkEvents(link, evs) {
    for (const ev of evs) {
      if (link !== this.link) return;
      let p;
      try {
        p = this.eventPacket(link, ev);
      } catch (e) {
        this.emit('error', { error: e, where: 'frame' });
        this.onLinkClose(link, { code: 0, reason: e.message, failed: !link.authed });
        return;
      }
      if (!p) continue;
      if (p.op === OP.CHANGE_ROOM_REPLY || p.op === OP.SUB_REPLY || p.op === OP.UNSUB_REPLY) {
        // replies come in the order of the calls: the oldest one waiting
        for (const [seq, w] of this.pending) if (w.op + 1 === p.op) { p.seq = seq; break; }
        if (!p.seq) continue;     // nobody waits for it (timed out)
      }
      this.onPacket(p);
    }
    if (this.posDirty) { this.posDirty = false; this.savePos(); }
  }

  eventPacket(link, ev) {
    const p = eventPacket(ev);
    if (!p) return null;
    if (p.op === OP.AUTH_REPLY && !link.authed) {
      // the session id for control calls ({..., "session": "MAC.KEY"})
      try {
        const s = JSON.parse(decoder.decode(p.body)).session;
        if (typeof s === 'string' && !link.session) link.session = s;
      } catch (e) { /* checked below */ }
      if (!link.session) throw new Error('op 8 without a session id');
    }
    if (p.op === OP.ENSURE && this.ack) {
      p.ensure = decodeEnsure(p.body);
    } else if (this.recover && p.id !== null) {
      const sides = parseEventId(p.id);
      if (!sides) throw new Error(`event id ${p.id} is not ROOM/ALL positions`);
      const last = link.lastId;
      link.lastId = sides;
      // op 21 says where both streams are; the rest with an id are room
      // messages and broadcasts
      if (p.op === OP.RECOVERY) return p;
      // a room message or broadcast: the side it moved is its stream
      const stream = sides[0] && sides[0] !== last[0] ? 'room' : sides[1] && sides[1] !== last[1] ? 'all' : null;
      if (!stream) { this.recoverStats.positioned++; this.recoverStats.dups++; return null; }
      const pos = stream === 'room' ? sides[0] : sides[1];
      const ps = parsePos(pos);
      if (!ps) throw new Error(`event id ${p.id}: epoch 0`);
      return { op: OP.POSITION, ver: p.ver, seq: 0, body: p.body,
               position: { stream, epoch: ps[0], seq: ps[1], pos, packet: { op: p.op, ver: p.ver, seq: 0, body: p.body } } };
    }
    return p;
  }

  onPacket(p, ensure) {
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
      if (this.state === 'authenticating' && this.link && !this.link.authed) {
        const link = this.link;
        link.authed = true;
        clearTimeout(this.openTimer);
        this.openTimer = null;
        this.attempts = 0;
        this.fails = 0;
        if (this.mode === 'auto') this.saveTransport();
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
        if (link.kind === 'sse') {
          // a dead stream (comet pings every 25 s): checked at a quarter of its timeout
          this.watchTimer = setInterval(() => this.watch(link), this.streamTimeout * 250);
        }
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
