// goim.js under node with a fake WebSocket and a fake fetch: the codec,
// the backoff, and the client's state machine (auth, heartbeats, online
// count, batches, requests, reconnects, bad frames, nodes, and with ack:
// ensure messages, ops 18 and 19: acks, resends dropped, bad op 19s; with
// recover: positions and resumes), then the same over SSE and long-poll
// against a fake comet behind fetch() (streams, control calls, cursors,
// last_event_id, refusals), and 'auto''s fallback from WebSocket to SSE to
// long-poll. Run by t/071-goim-js.t; prints "ok <name>" or "not ok <name>:
// <detail>".
import { GoimClient, OP, encodePacket, decodePackets, decodeEnsure, decodePosition, backoffDelay } from '../../clients/js/goim.js';

let failed = 0;
async function check(name, fn) {
  try { await fn(); console.log(`ok ${name}`); }
  catch (e) { failed++; console.log(`not ok ${name}: ${String(e && e.stack || e).split('\n').slice(0, 2).join(' | ')}`); }
}
function eq(got, want, what = '') {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what} got ${g}, want ${w}`);
}
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const te = new TextEncoder(), td = new TextDecoder();

class FakeWS {
  static all = [];
  constructor(url) {
    this.url = url; this.sent = []; this.readyState = 0; this.closed = null;
    FakeWS.all.push(this);
    // refuse: the handshake fails (no server, a proxy without WebSocket)
    if (FakeWS.refuse) setTimeout(() => { this.readyState = 3; this.onerror && this.onerror(); this.onclose && this.onclose({ code: 1006, reason: '' }); }, 0);
    else setTimeout(() => { if (this.readyState === 0) { this.readyState = 1; this.onopen && this.onopen(); } }, 0);
  }
  send(data) { this.sent.push(decodePackets(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))[0]); }
  close(code = 1000) { if (this.readyState === 3) return; this.readyState = 3; this.closed = code; setTimeout(() => this.onclose && this.onclose({ code, reason: '' }), 0); }
  // server side
  deliver(bytes) { this.onmessage && this.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }); }
  reply(op, seq, body = '') { this.deliver(encodePacket(op, seq, body)); }
  drop(code = 1006) { this.readyState = 3; this.onclose && this.onclose({ code, reason: '' }); }
  last() { return this.sent[this.sent.length - 1]; }
}
globalThis.WebSocket = FakeWS;

function batch(packets) {
  const inner = packets.map(([op, body]) => encodePacket(op, 0, body));
  const len = inner.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(16 + len);
  out.set(encodePacket(OP.RAW, 0).subarray(0, 16));
  new DataView(out.buffer).setInt32(0, out.length);
  let off = 16;
  for (const p of inner) { out.set(p, off); off += p.length; }
  return out;
}

async function authed(opts = {}) {
  const c = new GoimClient({ url: 'ws://comet/sub', mid: 7, room: 'live://1', accepts: [1000],
                             backoff: { base_delay: 0.01, max_delay: 0.05, factor: 2, jitter: 0.1 }, ...opts });
  const ev = { states: [], messages: [], online: [], errors: [] };
  c.on('state', (s) => ev.states.push(s.state));
  c.on('message', (m, e) => ev.messages.push(e ? [m.op, m.text, e] : [m.op, m.text]));
  c.on('online', (n) => ev.online.push(n));
  c.on('error', (e) => ev.errors.push(`${e.where}: ${e.error.message}`));
  await c.connect();
  await tick(5);
  const ws = FakeWS.all[FakeWS.all.length - 1];
  ws.reply(OP.AUTH_REPLY, ws.sent[0].seq);
  return { c, ev, ws };
}

await check('encodePacket writes goim v2\'s header (reference §1.11)', () => {
  const hb = encodePacket(OP.HEARTBEAT, 1);
  eq(Array.from(hb), [0, 0, 0, 16, 0, 16, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1]);
});

await check('decodePackets opens an op-9 batch into its inner packets', () => {
  const ps = decodePackets(batch([[1000, 'room message'], [1000, 'hi']]).buffer);
  eq(ps.map((p) => [p.op, p.seq, p.ver, td.decode(p.body)]), [[1000, 0, 1, 'room message'], [1000, 0, 1, 'hi']]);
});

await check('decodePackets refuses bad header lengths, short and mismatched lengths', () => {
  const bad = encodePacket(1000, 0, 'x');
  new DataView(bad.buffer).setInt16(4, 17);
  for (const [what, bytes] of [['header 17', bad], ['short', new Uint8Array(10)],
                               ['longer frame', new Uint8Array([...encodePacket(1000, 0, 'x'), 1])]]) {
    let threw = false;
    try { decodePackets(bytes.buffer); } catch (e) { threw = true; }
    if (!threw) throw new Error(`${what} accepted`);
  }
});

await check('backoff grows by the factor, stays within the jitter and the maximum', () => {
  const b = { base_delay: 3, max_delay: 300, factor: 1.8, jitter: 0.3 };
  for (let i = 0; i < 200; i++) {
    const d0 = backoffDelay(0, b), d2 = backoffDelay(2, b), d20 = backoffDelay(20, b);
    if (d0 < 2.1 || d0 > 3.9) throw new Error(`attempt 0: ${d0}`);
    if (d2 < 3 * 1.8 * 1.8 * 0.7 - 1e-9 || d2 > 3 * 1.8 * 1.8 * 1.3 + 1e-9) throw new Error(`attempt 2: ${d2}`);
    if (d20 > 390 || d20 < 210) throw new Error(`attempt 20: ${d20}`);
  }
});

await check('auth carries goim v2\'s token; op 8 connects and a heartbeat follows', async () => {
  const { c, ev, ws } = await authed({ key: 'k-7', heartbeat: 0.05, heartbeatMax: 100 });
  const auth = ws.sent[0];
  eq([auth.op, auth.ver], [OP.AUTH, 1]);
  eq(JSON.parse(td.decode(auth.body)), { mid: 7, key: 'k-7', room_id: 'live://1', platform: 'web', accepts: [1000] });
  eq(ev.states, ['connecting', 'authenticating', 'connected']);
  eq(ws.last().op, OP.HEARTBEAT, 'first heartbeat');
  const n = ws.sent.length;
  await tick(130);
  if (ws.sent.length < n + 2) throw new Error(`heartbeats at 50 ms: ${ws.sent.length - n} in 130 ms`);
  c.close();
});

await check('a JSON auth reply (ngx_goim) tells the key the server chose', async () => {
  const c = new GoimClient({ url: 'ws://comet/sub', mid: 8 });
  const states = [];
  c.on('state', (s) => states.push(s));
  await c.connect();
  await tick(5);
  const ws = FakeWS.all[FakeWS.all.length - 1];
  ws.reply(OP.AUTH_REPLY, ws.sent[0].seq, '{"mid":8,"key":"9b2c-uuid","room_id":"live://3"}');
  eq([c.state, c.key, states[states.length - 1].session], ['connected', '9b2c-uuid', { mid: 8, key: '9b2c-uuid', room_id: 'live://3' }]);
  c.close();
});

await check('heartbeat replies give the online count; pushes and batches give messages', async () => {
  const { c, ev, ws } = await authed();
  const body = new Uint8Array(4);
  new DataView(body.buffer).setInt32(0, 42);
  ws.reply(OP.HEARTBEAT_REPLY, 2, body);
  ws.deliver(batch([[1000, 'a'], [1001, 'b ✓']]));
  ws.reply(1002, 0, 'plain');
  eq(ev.online, [42]);
  eq(c.online, 42);
  eq(ev.messages, [[1000, 'a'], [1001, 'b ✓'], [1002, 'plain']]);
  c.close();
});

await check('changeRoom, sub and unsub send ops 12/14/16 and resolve on the reply', async () => {
  const { c, ws } = await authed();
  const p = c.changeRoom('live://2');
  const req = ws.last();
  eq([req.op, td.decode(req.body)], [OP.CHANGE_ROOM, 'live://2']);
  ws.reply(OP.CHANGE_ROOM_REPLY, req.seq, 'live://2');
  eq(await p, 'live://2');
  eq(c.room, 'live://2');
  // the heartbeat changeRoom sends to refresh the count
  eq(ws.last().op, OP.HEARTBEAT);
  const s = c.sub([1003, 1004]);
  const sreq = ws.last();
  eq([sreq.op, td.decode(sreq.body)], [OP.SUB, '1003,1004']);
  ws.reply(OP.SUB_REPLY, sreq.seq, '1003,1004');
  eq(await s, [1000, 1003, 1004]);
  const u = c.unsub(1000);
  // a server without op 17 echoes op 16: that resolves too
  ws.reply(OP.UNSUB, ws.last().seq);
  eq(await u, [1003, 1004]);
  c.close();
});

await check('after the server closes, it reconnects with the current room and accepts', async () => {
  const { c, ev, ws } = await authed();
  const p = c.changeRoom('live://9');
  ws.reply(OP.CHANGE_ROOM_REPLY, ws.last().seq, 'live://9');
  await p;
  const before = FakeWS.all.length;
  ws.drop(1001);
  await tick(120);
  if (FakeWS.all.length !== before + 1) throw new Error(`${FakeWS.all.length - before} new sockets`);
  const ws2 = FakeWS.all[FakeWS.all.length - 1];
  eq(JSON.parse(td.decode(ws2.sent[0].body)).room_id, 'live://9');
  ws2.reply(OP.AUTH_REPLY, ws2.sent[0].seq);
  eq(ev.states.slice(-4), ['reconnecting', 'connecting', 'authenticating', 'connected']);
  eq(c.attempts, 0, 'attempts reset after auth');
  c.close();
});

await check('with an opaque token (a JWT) a reconnect redoes the room change, sub and unsub', async () => {
  const { c, ws } = await authed({ token: 'header.claims.signature', room: 'live://1', accepts: [1000, 1001] });
  eq(td.decode(ws.sent[0].body), 'header.claims.signature');
  for (const [call, op] of [[() => c.changeRoom('live://5'), OP.CHANGE_ROOM_REPLY], [() => c.sub(1002), OP.SUB_REPLY],
                            [() => c.unsub(1000), OP.UNSUB_REPLY]]) {
    const p = call();
    ws.reply(op, ws.last().seq);
    await p;
  }
  ws.drop(1001);
  await tick(120);
  const ws2 = FakeWS.all[FakeWS.all.length - 1];
  ws2.reply(OP.AUTH_REPLY, ws2.sent[0].seq);
  eq(ws2.sent.slice(1).map((p) => [p.op, td.decode(p.body)]),
     [[OP.HEARTBEAT, ''], [OP.CHANGE_ROOM, 'live://5'], [OP.SUB, '1002'], [OP.UNSUB, '1000']]);
  c.close();
});

await check('a refused auth is retried with growing delays until close()', async () => {
  const c = new GoimClient({ url: 'ws://comet/sub', backoff: { base_delay: 0.01, max_delay: 1, factor: 2, jitter: 0 } });
  const delays = [];
  c.on('state', (s) => { if (s.state === 'reconnecting') delays.push(s.delay); });
  const before = FakeWS.all.length;
  await c.connect();
  for (let i = 0; i < 3; i++) {
    await tick(5);
    FakeWS.all[FakeWS.all.length - 1].drop(1006);
    await tick(delays[delays.length - 1] * 1000 + 10);
  }
  c.close();
  const n = FakeWS.all.length;
  await tick(100);
  eq(delays.map((d) => Math.round(d * 100)), [1, 2, 4]);
  eq(FakeWS.all.length, n, 'no reconnect after close()');
  eq(n - before, 4);
  eq(c.state, 'closed');
});

await check('a malformed frame is reported and the connection reopened', async () => {
  const { c, ev, ws } = await authed();
  const bad = encodePacket(1000, 0, 'x');
  new DataView(bad.buffer).setInt16(4, 20);
  ws.deliver(bad);
  eq(ev.errors.length, 1);
  if (!ev.errors[0].startsWith('frame:')) throw new Error(ev.errors[0]);
  eq(ws.closed, 1002);
  await tick(100);
  if (!ev.states.includes('reconnecting')) throw new Error(ev.states.join());
  c.close();
});

await check('no reply for heartbeat x heartbeatMax closes and reconnects', async () => {
  const { c, ev, ws } = await authed({ heartbeat: 0.03, heartbeatMax: 2 });
  await tick(150);
  if (!ev.errors.some((e) => e === 'heartbeat: heartbeat timeout')) throw new Error(ev.errors.join());
  if (ws.readyState !== 3) throw new Error('still open');
  c.close();
});

await check('nodes/weighted gives the heartbeat, the backoff and the addresses, tried in turn', async () => {
  globalThis.fetch = async (url) => ({
    ok: true,
    json: async () => ({ code: 0, data: { domain: 'conn.goim.io', tcp_port: 3101, ws_port: 3102, heartbeat: 120,
      heartbeat_max: 3, nodes: ['10.0.0.5', '10.0.0.6'], backoff: { max_delay: 300, base_delay: 3, factor: 1.8, jitter: 0.3 } } }),
    url,
  });
  const c = new GoimClient({ nodesUrl: 'http://logic/goim/nodes/weighted?platform=web' });
  await c.connect();
  eq([c.heartbeatSecs, c.heartbeatMax, c.backoff.base_delay], [120, 3, 3]);
  eq(FakeWS.all[FakeWS.all.length - 1].url, 'ws://10.0.0.5:3102/sub');
  c.backoff = { base_delay: 0.001, max_delay: 0.001, factor: 1, jitter: 0 };
  await tick(5);
  FakeWS.all[FakeWS.all.length - 1].drop(1006);
  await tick(20);
  eq(FakeWS.all[FakeWS.all.length - 1].url, 'ws://10.0.0.6:3102/sub', 'the next node on reconnect');
  c.close();
  globalThis.fetch = async () => ({ ok: false, status: 404, json: async () => ({ code: -404, message: 'unknown endpoint' }) });
  const d = new GoimClient({ url: 'ws://comet/sub', nodesUrl: 'http://logic/x' });
  const errs = [];
  d.on('error', (e) => errs.push(e.where));
  await d.connect();
  eq([d.heartbeatSecs, d.backoff.base_delay, errs], [240, 1, ['nodes']]);
  d.close();
});

// ensure messages (ops 18 and 19): an op 19's body, seq | n | id | packet
function ensureBody(seq, id, op, text) {
  const inner = encodePacket(op, 0, text);
  const ids = te.encode(id);
  const b = new Uint8Array(9 + ids.length + inner.length);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq));
  b[8] = ids.length;
  b.set(ids, 9);
  b.set(inner, 9 + ids.length);
  return b;
}
// a fake sessionStorage, to see the ids seen survive a new client
const store = new Map();
globalThis.sessionStorage = { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)) };
const acksOf = (ws) => ws.sent.filter((p) => p.op === OP.ACK).map((p) => td.decode(p.body));

await check('decodeEnsure reads seq, id and the packet inside; refuses malformed bodies', () => {
  const e = decodeEnsure(ensureBody(1733224000123000, 'm-1', 1000, 'inner ✓'));
  eq([e.seq, e.id, e.packet.op, e.packet.seq, td.decode(e.packet.body)], [1733224000123000, 'm-1', 1000, 0, 'inner ✓']);
  const good = ensureBody(5, 'abc', 1000, 'x');
  const zeroId = good.slice(); zeroId[8] = 0;
  const longId = good.slice(); longId[8] = 65;
  const comma = ensureBody(5, 'a,b', 1000, 'x');
  const ctl = ensureBody(5, 'a\nb', 1000, 'x');
  const trailing = new Uint8Array([...good, 0]);
  const short = good.subarray(0, good.length - 1);
  const nested = ensureBody(5, 'abc', OP.ENSURE, 'x');
  for (const [what, b] of [['8 bytes', good.subarray(0, 8)], ['id length 0', zeroId], ['id length 65', longId],
                           ['a comma in the id', comma], ['a control byte in the id', ctl],
                           ['bytes after the packet', trailing], ['a cut packet', short],
                           ['an op 19 inside', nested], ['no packet', good.subarray(0, 12)]]) {
    let threw = false;
    try { decodeEnsure(b); } catch (err) { threw = true; }
    if (!threw) throw new Error(`${what} accepted`);
  }
});

await check('with ack, an empty op 18 follows op 8 at once (before the first heartbeat)', async () => {
  const { c, ws } = await authed({ ack: true, mid: 70, ackStorage: false });
  eq(ws.sent.map((p) => p.op), [OP.AUTH, OP.ACK, OP.HEARTBEAT]);
  eq(ws.sent[1].body.length, 0, 'op 18 body');
  c.close();
});

await check('with ack, an op 19 is delivered as its inner message with {id, seq}; the ids acked in one op 18', async () => {
  const { c, ev, ws } = await authed({ ack: true, mid: 71, ackStorage: false });
  ws.deliver(batch([[OP.ENSURE, ensureBody(1000, 'id-a', 1000, 'first')], [1001, 'plain'],
                    [OP.ENSURE, ensureBody(2000, 'id-b', 1002, 'second')]]));
  eq(ev.messages, [[1000, 'first', { id: 'id-a', seq: 1000 }], [1001, 'plain'], [1002, 'second', { id: 'id-b', seq: 2000 }]]);
  eq(acksOf(ws), [''], 'not acked before the batch window');
  ws.reply(OP.ENSURE, 0, ensureBody(3000, 'id-c', 1000, 'third'));
  await tick(150);
  eq(acksOf(ws), ['', 'id-a,id-b,id-c'], 'one op 18 for the three');
  eq(c.ackStats, { ensure: 3, dups: 0, acked: 3 });
  c.close();
});

await check('with ack, a resend of an id seen is acked again but not delivered twice, also across a reconnect', async () => {
  const { c, ev, ws } = await authed({ ack: true, mid: 72, ackStorage: false });
  ws.reply(OP.ENSURE, 0, ensureBody(10, 'dup-1', 1000, 'once'));
  ws.reply(OP.ENSURE, 0, ensureBody(10, 'dup-1', 1000, 'once'));
  await tick(150);
  eq(ev.messages, [[1000, 'once', { id: 'dup-1', seq: 10 }]]);
  eq(acksOf(ws), ['', 'dup-1,dup-1']);
  eq([c.ackStats.ensure, c.ackStats.dups], [2, 1]);
  // the connection dies before a new id is acked: the server resends both
  ws.reply(OP.ENSURE, 0, ensureBody(20, 'dup-2', 1000, 'before the drop'));
  ws.drop(1006);
  await tick(120);
  const ws2 = FakeWS.all[FakeWS.all.length - 1];
  if (ws2 === ws) throw new Error('no reconnect');
  ws2.reply(OP.AUTH_REPLY, ws2.sent[0].seq);
  eq(acksOf(ws2), [''], 'the empty op 18 again after the reconnect');
  ws2.deliver(batch([[OP.ENSURE, ensureBody(10, 'dup-1', 1000, 'once')], [OP.ENSURE, ensureBody(20, 'dup-2', 1000, 'before the drop')],
                     [OP.ENSURE, ensureBody(30, 'dup-3', 1000, 'new')]]));
  await tick(150);
  eq(ev.messages.map((m) => m[1]), ['once', 'before the drop', 'new']);
  eq(acksOf(ws2), ['', 'dup-1,dup-2,dup-3']);
  eq(c.ackStats, { ensure: 6, dups: 3, acked: 5 });
  c.close();
});

await check('with ack, the ids seen are kept in sessionStorage: a new client (a reload) drops their resends', async () => {
  const a = await authed({ ack: true, mid: 73 });
  a.ws.reply(OP.ENSURE, 0, ensureBody(1, 'kept-1', 1000, 'before the reload'));
  await tick(150);
  eq(JSON.parse(store.get('goim.ack.73')), ['kept-1']);
  a.c.close();
  const b = await authed({ ack: true, mid: 73 });
  b.ws.reply(OP.ENSURE, 0, ensureBody(1, 'kept-1', 1000, 'before the reload'));
  b.ws.reply(OP.ENSURE, 0, ensureBody(2, 'kept-2', 1000, 'after the reload'));
  await tick(150);
  eq(b.ev.messages.map((m) => m[1]), ['after the reload']);
  eq(acksOf(b.ws), ['', 'kept-1,kept-2']);
  eq(b.c.ackStats.dups, 1);
  b.c.close();
});

await check('with ack, a malformed op 19 is not delivered nor acked: the frame is dropped and the link reopened', async () => {
  const { c, ev, ws } = await authed({ ack: true, mid: 74, ackStorage: false });
  const bad = ensureBody(1, 'bad-1', 1000, 'never');
  bad[8] = 0;
  ws.deliver(batch([[1000, 'same frame'], [OP.ENSURE, bad]]));
  ws.reply(OP.ENSURE, 0, ensureBody(1, 'bad,2', 1000, 'never either'));
  await tick(150);
  eq(ev.messages, []);
  eq(acksOf(ws), ['']);
  if (!ev.errors.length || !ev.errors[0].startsWith('frame: op 19')) throw new Error(ev.errors.join());
  eq(ws.closed, 1002);
  eq(c.ackStats, { ensure: 0, dups: 0, acked: 0 });
  c.close();
});

await check('without ack, no op 18 is sent and an op 19 is just another op: no id, no ack, no error', async () => {
  const { c, ev, ws } = await authed({ mid: 75 });
  ws.deliver(batch([[OP.ENSURE, ensureBody(1, 'plain-1', 1000, 'ignored')], [1000, 'a plain push']]));
  ws.reply(OP.ENSURE, 0, new Uint8Array([1, 2, 3]));
  await tick(150);
  // (the server never sends op 19 to such a connection: it gets the plain push)
  eq(ev.messages.map((m) => [m[0], m.length]), [[OP.ENSURE, 2], [1000, 2], [OP.ENSURE, 2]]);
  eq(ev.messages[1], [1000, 'a plain push']);
  eq(ev.errors, []);
  eq(ws.sent.map((p) => p.op), [OP.AUTH, OP.HEARTBEAT]);
  eq(ws.readyState, 1, 'still open');
  eq(store.has('goim.ack.75'), false, 'nothing stored');
  c.close();
});

function posBody(stream, epoch, seq, op, text) {
  const inner = encodePacket(op, 0, text);
  const b = new Uint8Array(17 + inner.length);
  b[0] = stream === 'all' ? 1 : 0;
  new DataView(b.buffer).setBigUint64(1, BigInt(epoch));
  new DataView(b.buffer).setBigUint64(9, BigInt(seq));
  b.set(inner, 17);
  return b;
}
const authOf = (ws) => td.decode(ws.sent.find((p) => p.op === OP.AUTH).body);
const E = 1796305030774362;

await check('decodePosition reads stream, epoch, seq and the packet; refuses malformed bodies', () => {
  const p = decodePosition(posBody('all', E, 42, 1000, 'x'));
  eq([p.stream, p.epoch, p.seq, p.pos, td.decode(p.packet.body)], ['all', E, 42, `${E}:42`, 'x']);
  const bad = posBody('room', E, 1, 1000, 'x');
  for (const b of [bad.subarray(0, 20), (() => { const c = bad.slice(); c[0] = 2; return c; })(),
                   posBody('room', 0, 1, 1000, 'x'), new Uint8Array([...bad, 0])]) {
    let threw = false;
    try { decodePosition(b); } catch (e) { threw = true; }
    if (!threw) throw new Error('accepted a malformed op 20');
  }
});

await check('with recover, the auth asks for positions, op 20 comes as its message with its position, seen ones dropped', async () => {
  const { c, ev, ws } = await authed({ recover: true, mid: 81, recoverStorage: false });
  eq(JSON.parse(authOf(ws)).recover, true, 'recover in the token');
  ws.deliver(batch([[OP.POSITION, posBody('room', E, 1, 1000, 'r1')], [OP.POSITION, posBody('room', E, 2, 1000, 'r2')],
                    [OP.POSITION, posBody('all', E + 1, 7, 1000, 'b7')]]));
  ws.deliver(batch([[OP.POSITION, posBody('room', E, 2, 1000, 'r2')]]));
  eq(ev.messages.map((m) => [m[1], m[2].stream, m[2].pos]),
     [['r1', 'room', `${E}:1`], ['r2', 'room', `${E}:2`], ['b7', 'all', `${E + 1}:7`]]);
  eq(c.recoverStats, { positioned: 4, dups: 1, recovered: 0, gaps: 0 });
  // a reconnect names the last positions; op 21 reports how it went
  ws.drop(1006);
  await tick(120);
  const ws2 = FakeWS.all[FakeWS.all.length - 1];
  const t = JSON.parse(authOf(ws2));
  eq([t.room_id, t.room_pos, t.all_pos], ['live://1', `${E}:2`, `${E + 1}:7`]);
  const rec = [];
  c.on('recovery', (r) => rec.push([r.stream, r.recovered, r.asked]));
  ws2.reply(OP.AUTH_REPLY, ws2.sent[0].seq, '{"mid":81,"key":"k","room_id":"live://1"}');
  ws2.deliver(batch([[OP.POSITION, posBody('room', E, 3, 1000, 'missed')]]));
  ws2.reply(OP.RECOVERY, 0, `{"stream":"room","room":"live://1","pos":"${E}:3","recovered":true,"missed":1}`);
  ws2.reply(OP.RECOVERY, 0, `{"stream":"all","pos":"${E + 5}:1","recovered":false,"missed":0}`);
  eq(ev.messages.map((m) => m[1]).slice(3), ['missed']);
  eq(rec, [['room', true, true], ['all', false, true]]);
  eq(c.recoverStats.gaps, 1, 'the broadcasts could not be recovered');
  eq(c.allPos, `${E + 5}:1`, 'and go on from the position op 21 gave');
  c.close();
});

await check('with recover, changing back to a room names its last position in op 12; a JWT gets the options after it', async () => {
  const { c, ws } = await authed({ recover: true, mid: 82, recoverStorage: false });
  ws.deliver(batch([[OP.POSITION, posBody('room', E, 9, 1000, 'here')]]));
  const p = c.changeRoom('live://2');
  await tick(1);
  const op12 = ws.sent.filter((x) => x.op === OP.CHANGE_ROOM);
  eq(td.decode(op12[0].body), 'live://2', 'a room never seen: just its name');
  ws.reply(OP.CHANGE_ROOM_REPLY, op12[0].seq, 'live://2');
  await p;
  const back = c.changeRoom('live://1');
  await tick(1);
  const op12b = ws.sent.filter((x) => x.op === OP.CHANGE_ROOM)[1];
  eq(td.decode(op12b.body), `live://1\n${E}:9`, 'back: the room and its last position');
  ws.reply(OP.CHANGE_ROOM_REPLY, op12b.seq, 'live://1');
  await back;
  c.close();
  const j = await authed({ recover: true, mid: 83, recoverStorage: false, token: 'aaa.bbb.ccc' });
  eq(authOf(j.ws), 'aaa.bbb.ccc {"recover":true}', 'the JWT, then the client\'s own options');
  j.c.close();
});

await check('with recover, positions are kept in sessionStorage: a reloaded page resumes from them', async () => {
  const a = await authed({ recover: true, mid: 84 });
  a.ws.deliver(batch([[OP.POSITION, posBody('room', E, 5, 1000, 'x')]]));
  a.c.close();
  const b = await authed({ recover: true, mid: 84 });
  eq(JSON.parse(authOf(b.ws)).room_pos, `${E}:5`);
  b.c.close();
});

await check('without recover, op 20 and 21 are unknown ops, and the token is goim\'s', async () => {
  const { c, ev, ws } = await authed({ mid: 85 });
  ws.reply(OP.POSITION, 0, posBody('room', E, 1, 1000, 'x'));
  eq(ev.messages.map((m) => m[0]), [OP.POSITION]);
  eq(JSON.parse(authOf(ws)).recover, undefined);
  eq(ev.errors, []);
  c.close();
});

// ---- SSE and long-poll: a fake comet behind a fake fetch --------------
// Each request is kept ({url, path, q, method, headers, body}); the
// test answers it: answer() with a status and a body, stream() with an
// SSE stream it pushes to; an aborted request rejects like fetch does.
const http = { log: [], handler: null };
globalThis.fetch = (url, init = {}) => new Promise((resolve, reject) => {
  const u = new URL(url);
  const headers = Object.fromEntries(Object.entries(init.headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
  const req = { url: u, path: u.pathname, q: u.searchParams, method: init.method || 'GET', headers,
                body: init.body, resolve, reject, aborted: false, ctl: null };
  if (init.signal) {
    init.signal.addEventListener('abort', () => {
      req.aborted = true;
      const e = new Error('This operation was aborted');
      e.name = 'AbortError';
      reject(e);
      if (req.ctl) { try { req.ctl.error(e); } catch (x) { /* closed */ } }
    });
  }
  http.log.push(req);
  if (http.handler) http.handler(req);
});
const reqs = (path) => http.log.filter((r) => r.path === path);
function answer(req, status, body = '', headers = {}) {
  req.resolve(new Response(body, { status, headers: { 'content-type': 'application/json', ...headers } }));
}
const envelope = (code, message) => JSON.stringify({ code: -code, message });
function stream(req, headers = {}) {
  let ctl;
  const rs = new ReadableStream({ start(c) { ctl = c; } });
  req.ctl = ctl;
  req.resolve(new Response(rs, { status: 200, headers: { 'content-type': 'text/event-stream', ...headers } }));
  return {
    push(x) { ctl.enqueue(typeof x === 'string' ? te.encode(x) : x); },
    end() { try { ctl.close(); } catch (e) { /* aborted */ } },
  };
}
// one event as comet writes it (docs/protocol.md "SSE subscribers")
function sev(op, data, id = null) {
  const bin = data instanceof Uint8Array;
  const lines = bin ? [Buffer.from(data).toString('base64')] : data.split('\n');
  return `event: ${op}${bin ? '.b64' : ''}\n${id !== null ? `id: ${id}\n` : ''}${lines.map((l) => `data: ${l}\n`).join('')}\n`;
}
const auth8 = (key = 'k1', room = 'live://1', session = `${'A'.repeat(22)}.${key}`) =>
  sev(8, JSON.stringify({ mid: 7, key, room_id: room, session }));
async function until(fn, what, ms = 1000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await tick(2);
  }
}
const fast = { base_delay: 0.005, max_delay: 0.02, factor: 2, jitter: 0 };
function watch(c) {
  const ev = { states: [], messages: [], errors: [], closes: [], online: [], fallbacks: [], recoveries: [] };
  c.on('state', (s) => ev.states.push(`${s.state}:${s.transport}`));
  c.on('message', (m, e) => ev.messages.push(e ? [m.op, m.text, e] : [m.op, m.text]));
  c.on('error', (e) => ev.errors.push(`${e.where}: ${e.error.message}`));
  c.on('close', (e) => ev.closes.push(`${e.transport} ${e.code}`));
  c.on('online', (n) => ev.online.push(n));
  c.on('fallback', (f) => ev.fallbacks.push(`${f.from}>${f.to}`));
  c.on('recovery', (r) => ev.recoveries.push([r.stream, r.recovered, r.asked]));
  return ev;
}
// control calls made, as [op, body]; each answered 202 unless told
const controls = () => reqs('/sse/control').map((r) => [Number(r.q.get('op')), String(r.body ?? '')]);
// what comet and logic answer unless a test says otherwise: control
// calls 202, nodes an empty answer
function autoControl(req) {
  if (req.path === '/sse/control' && !req.held) { req.held = true; answer(req, 202, '{"code":0,"message":""}'); return true; }
  if (req.path === '/goim/nodes/weighted') { answer(req, 200, '{"code":0,"message":"","data":{}}'); return true; }
  return false;
}
// a test's own log, and who answers
function fresh(handler = autoControl) { http.log = []; http.handler = handler; }

// an SSE client connected: the client, its events, the open request and its stream
async function sseUp(opts = {}, key = 'k1', handler = autoControl) {
  fresh(handler);
  const c = new GoimClient({ url: 'ws://comet:3102/sub', transport: 'sse', mid: 7, room: 'live://1',
                             accepts: [1000], backoff: fast, transportStorage: false, ...opts });
  const ev = watch(c);
  const n = reqs('/sse').length;
  await c.connect();
  const req = await until(() => reqs('/sse')[n], 'SSE request');
  const s = stream(req);
  s.push(auth8(key));
  await until(() => c.state === 'connected', 'connected');
  return { c, ev, req, s };
}

await check('sse: GET /sse on the WebSocket URL\'s origin with the token in X-Goim-Token; op 8 connects, no heartbeat', async () => {
  const { c, ev, req } = await sseUp({ key: 'k1' });
  eq(req.url.origin + req.path, 'http://comet:3102/sse');
  eq(JSON.parse(req.headers['x-goim-token']), { mid: 7, key: 'k1', room_id: 'live://1', platform: 'web', accepts: [1000] });
  eq(req.q.has('token'), false, 'not in the URL');
  eq(ev.states, ['connecting:sse', 'authenticating:sse', 'connected:sse']);
  eq([c.transport, c.key, c.link.session], ['sse', 'k1', `${'A'.repeat(22)}.k1`]);
  eq(controls(), [], 'nothing sent: no op 2 on SSE');
  let threw = false;
  try { c.send(OP.HEARTBEAT); } catch (e) { threw = /only 12, 14, 16 and 18/.test(e.message); }
  eq(threw, true, 'op 2 cannot be sent');
  c.close();
  eq(req.aborted, true, 'close() ends the stream');
});

await check('sse: a token a header cannot carry (not printable ASCII) goes as the token argument, URL-escaped', async () => {
  const { c, req } = await sseUp({ room: 'live://café' });
  eq(req.headers['x-goim-token'], undefined);
  eq(JSON.parse(req.q.get('token')).room_id, 'live://café');
  c.close();
});

await check('sse: text, multi-line, UTF-8 split across reads, base64 and comments come as messages', async () => {
  const { c, ev, s } = await sseUp();
  s.push(': ping\n\n');
  s.push(sev(1000, 'line 1\nline 2'));
  const utf = te.encode(sev(1001, 'b ✓'));
  s.push(utf.subarray(0, utf.length - 4));
  await tick(2);
  s.push(utf.subarray(utf.length - 4));
  s.push(sev(1002, new Uint8Array([0, 255, 1])));
  s.push('event: 1000\r\ndata: crlf\r\n\r\n');
  await until(() => ev.messages.length === 4, 'four messages');
  eq(ev.messages.slice(0, 2), [[1000, 'line 1\nline 2'], [1001, 'b ✓']]);
  eq(ev.messages[3], [1000, 'crlf']);
  c.on('message', () => {});
  c.close();
});

await check('sse: a binary body arrives byte for byte', async () => {
  const { c, s } = await sseUp();
  const got = [];
  c.on('message', (m) => got.push(Array.from(m.body)));
  s.push(sev(1000, new Uint8Array([0, 255, 1, 2])));
  await until(() => got.length, 'the message');
  eq(got, [[0, 255, 1, 2]]);
  c.close();
});

await check('sse: changeRoom, sub and unsub are control calls, one at a time, resolved by the reply events', async () => {
  const held = [];
  const { c, s } = await sseUp();
  http.handler = (req) => { if (req.path === '/sse/control') held.push(req); };
  const p1 = c.changeRoom('live://2');
  const p2 = c.sub([1003]);
  await until(() => held.length === 1, 'the first call');
  eq(held[0].url.origin + held[0].path, 'http://comet:3102/sse/control');
  eq([held[0].method, held[0].q.get('session'), held[0].q.get('op'), held[0].body], ['POST', `${'A'.repeat(22)}.k1`, '12', 'live://2']);
  await tick(10);
  eq(held.length, 1, 'the second waits for the first\'s answer');
  answer(held[0], 202, '{"code":0,"message":""}');
  await until(() => held.length === 2, 'the second call');
  eq([held[1].q.get('op'), held[1].body], ['14', '1003']);
  answer(held[1], 202, '{"code":0,"message":""}');
  s.push(sev(13, 'live://2') + sev(15, '1003'));
  eq(await p1, 'live://2');
  eq(await p2, [1000, 1003]);
  eq(c.room, 'live://2');
  http.handler = autoControl;
  const p3 = c.unsub(1000);
  await until(() => controls().some(([op]) => op === 16), 'op 16');
  s.push(sev(17, '1000'));
  eq(await p3, [1003]);
  c.close();
});

await check('sse: a refused control call rejects its request with comet\'s reason', async () => {
  const { c, ev } = await sseUp();
  http.handler = (req) => { if (req.path === '/sse/control') answer(req, 404, envelope(404, 'no SSE or poll session with this key')); };
  let err = null;
  try { await c.changeRoom('live://3'); } catch (e) { err = e.message; }
  eq(err, 'control call op 12: 404 no SSE or poll session with this key');
  eq(c.room, 'live://1');
  if (!ev.errors.some((e) => e.startsWith('control: '))) throw new Error(ev.errors.join());
  c.close();
});

await check('sse: with ack, an empty op 18 call follows op 8, an op 19 event (base64) is delivered once and acked', async () => {
  const { c, ev, s } = await sseUp({ ack: true, mid: 90, ackStorage: false });
  await until(() => controls().length >= 1, 'op 18');
  eq(controls()[0], [OP.ACK, ''], 'the first op 18 declares acks');
  const n = controls().length;
  s.push(sev(19, ensureBody(500, 'e-1', 1000, 'ensured')) + sev(19, ensureBody(500, 'e-1', 1000, 'ensured')));
  await until(() => controls().length > n, 'the ack call', 1000);
  eq(ev.messages, [[1000, 'ensured', { id: 'e-1', seq: 500 }]]);
  eq(controls().slice(n), [[OP.ACK, 'e-1,e-1']]);
  eq(c.ackStats, { ensure: 2, dups: 1, acked: 2 });
  c.close();
});

await check('sse: with recover, event ids give positions (the side that moved is the stream); a reconnect sends last_event_id', async () => {
  const { c, ev, s, req } = await sseUp({ recover: true, mid: 91, recoverStorage: false });
  eq(req.q.has('last_event_id'), false, 'nothing to resume at first');
  eq(JSON.parse(req.headers['x-goim-token']).recover, true);
  s.push(sev(1000, 'r1', `${E}:1/`) + sev(1000, 'b1', `${E}:1/${E + 1}:4`) + sev(1000, 'r2', `${E}:2/${E + 1}:4`));
  s.push(sev(1000, 'again', `${E}:2/${E + 1}:4`));
  await until(() => ev.messages.length === 3, 'three messages');
  eq(ev.messages.map((m) => [m[1], m[2].stream, m[2].pos]),
     [['r1', 'room', `${E}:1`], ['b1', 'all', `${E + 1}:4`], ['r2', 'room', `${E}:2`]]);
  await tick(5);
  eq(c.recoverStats.dups, 1, 'an id that moved nothing is dropped');
  s.end();
  const r2 = await until(() => reqs('/sse').find((r) => r !== req && !r.answered), 'the reconnect');
  r2.answered = true;
  eq(r2.q.get('last_event_id'), `${E}:2/${E + 1}:4`);
  eq(r2.url.search.includes(`last_event_id=${E}:2/${E + 1}:4`), true, 'as it is: digits, colons and a slash');
  const t = JSON.parse(r2.headers['x-goim-token']);
  eq([t.room_pos, t.all_pos], [`${E}:2`, `${E + 1}:4`]);
  const s2 = stream(r2);
  s2.push(auth8('k1'));
  s2.push(sev(1000, 'missed', `${E}:3/${E + 1}:4`));
  s2.push(sev(21, `{"stream":"room","room":"live://1","pos":"${E}:3","recovered":true,"missed":1}`, `${E}:3/${E + 1}:4`));
  s2.push(sev(21, `{"stream":"all","pos":"${E + 1}:4","recovered":true,"missed":0}`, `${E}:3/${E + 1}:4`));
  s2.push(sev(1000, 'b2', `${E}:3/${E + 1}:5`));
  await until(() => ev.messages.length === 5, 'after the resume');
  eq(ev.messages.slice(3).map((m) => [m[1], m[2].stream, m[2].pos]), [['missed', 'room', `${E}:3`], ['b2', 'all', `${E + 1}:5`]]);
  eq(ev.recoveries, [['room', true, true], ['all', true, true]]);
  c.close();
});

await check('sse: comet\'s 403 is a refused token (retried on SSE), not a transport failure', async () => {
  const c = new GoimClient({ url: 'ws://comet:3102/sub', backoff: fast, transportStorage: false, transport: 'auto' });
  c.transport = 'sse';
  const ev = watch(c);
  fresh((req) => { if (req.path === '/sse') answer(req, 403, envelope(403, 'token refused')); });
  const n = 0;
  await c.connect();
  await until(() => reqs('/sse').length >= n + 4, 'four attempts');
  c.close();
  eq(ev.fallbacks, []);
  eq(c.transport, 'sse');
  if (!ev.closes.every((x) => x === 'sse 403')) throw new Error(ev.closes.join());
});

await check('sse: an attempt without op 8 within openTimeout fails; a stream silent for streamTimeout is reopened', async () => {
  fresh(null);
  const c = new GoimClient({ url: 'ws://comet:3102/sub', transport: 'sse', backoff: fast, openTimeout: 0.03,
                             streamTimeout: 0.08, transportStorage: false });
  const ev = watch(c);
  const n = reqs('/sse').length;
  await c.connect();
  const r1 = await until(() => reqs('/sse')[n], 'the request');
  stream(r1).push(': a proxy that passes nothing more\n\n');
  const r2 = await until(() => reqs('/sse')[n + 1], 'a second attempt', 500);
  eq(r1.aborted, true);
  if (!ev.closes[0].startsWith('sse 0')) throw new Error(ev.closes.join());
  const s2 = stream(r2);
  s2.push(auth8());
  await until(() => c.state === 'connected', 'connected');
  // then nothing at all: the watchdog ends it
  await until(() => reqs('/sse')[n + 2], 'the reopen after the silence', 1000);
  if (!ev.errors.some((e) => /nothing on the stream/.test(e))) throw new Error(ev.errors.join());
  c.close();
});

await check('sse: a malformed event (bad base64, an id that is no position, an endless event) reopens the stream', async () => {
  for (const [bad, opts] of [['event: 1000.b64\ndata: ***\n\n', {}], [sev(1000, 'x', 'nonsense'), { recover: true, recoverStorage: false }],
                             ['data: ' + 'x'.repeat(3000), { eventMax: 2048 }]]) {
    const { c, ev, s, req } = await sseUp(opts);
    s.push(sev(1000, 'before'));
    s.push(bad);
    await until(() => ev.errors.some((e) => e.startsWith('frame: ')), 'a frame error');
    eq(ev.messages, [[1000, 'before']]);
    await until(() => reqs('/sse').some((r) => r.aborted) && req.aborted, 'the stream ended');
    c.close();
  }
});

await check('sse: the online count comes from logic\'s /goim/online/room on nodesUrl\'s origin', async () => {
  const asked = [];
  let n = 3;
  const { c, ev } = await sseUp({ nodesUrl: 'http://logic:3111/goim/nodes/weighted?platform=web', room: 'live://1000' }, 'k1', (req) => {
    if (autoControl(req)) return;
    if (req.path === '/goim/online/room') { asked.push(req.url.href); answer(req, 200, `{"code":0,"message":"","data":{"1000":${n}}}`); }
  });
  await until(() => ev.online.length, 'the count asked right after op 8');
  eq(asked[0], 'http://logic:3111/goim/online/room?type=live&rooms=1000');
  eq([ev.online, c.online], [[3], 3]);
  n = 4;
  c.heartbeat();
  await until(() => ev.online.length === 2, 'the count heartbeat() asks for');
  eq(ev.online, [3, 4]);
  c.close();
});

// long-poll: the open answer and each poll, as comet's goim_comet_poll answers
function pollAnswer(req, cursor, events = '', session = `${'P'.repeat(22)}.pk`) {
  req.answered = true;
  req.resolve(new Response(events, { status: 200, headers: { 'content-type': 'text/event-stream',
    'x-goim-session': session, 'x-goim-cursor': String(cursor) } }));
}
const polls = () => reqs('/poll').filter((r) => r.q.has('session') && !r.answered && !r.aborted);
const opens = () => reqs('/poll').filter((r) => !r.q.has('session'));
async function pollUp(opts = {}) {
  fresh();
  const c = new GoimClient({ url: 'ws://comet:3102/sub', transport: 'poll', mid: 7, room: 'live://1',
                             accepts: [1000], backoff: fast, transportStorage: false, ...opts });
  const ev = watch(c);
  const n = opens().length;
  await c.connect();
  const req = await until(() => opens()[n], 'the open');
  pollAnswer(req, 1, auth8('pk', 'live://1', `${'P'.repeat(22)}.pk`));
  await until(() => c.state === 'connected', 'connected');
  return { c, ev, req };
}

await check('poll: the open carries the token, answers op 8 and the session; polls name the cursor and get what came', async () => {
  const { c, ev, req } = await pollUp();
  eq(req.url.origin + req.path, 'http://comet:3102/poll');
  eq(JSON.parse(req.headers['x-goim-token']).mid, 7);
  eq(ev.states, ['connecting:poll', 'authenticating:poll', 'connected:poll']);
  const p1 = await until(() => polls()[0], 'the first poll');
  eq([p1.q.get('session'), p1.q.get('cursor')], [`${'P'.repeat(22)}.pk`, '1']);
  pollAnswer(p1, 3, sev(1000, 'one') + sev(1001, 'two'));
  const p2 = await until(() => polls()[0], 'the next poll');
  eq(p2.q.get('cursor'), '3');
  eq(ev.messages, [[1000, 'one'], [1001, 'two']]);
  pollAnswer(p2, 3, '');      // held to the timeout: empty, cursor unchanged
  const p3 = await until(() => polls()[0], 'a poll after the empty one');
  eq(p3.q.get('cursor'), '3');
  c.close();
  eq(p3.aborted, true, 'close() ends the held poll');
});

await check('poll: a lost answer is asked for again with the same cursor, and so is a body cut short (nothing of it handed on)', async () => {
  const { c, ev } = await pollUp();
  const p1 = await until(() => polls()[0], 'a poll');
  p1.answered = true;
  p1.reject(new TypeError('fetch failed'));
  const p2 = await until(() => polls()[0], 'the retry');
  eq(p2.q.get('cursor'), '1');
  if (!ev.errors.some((e) => e.startsWith('poll: '))) throw new Error(ev.errors.join());
  p2.answered = true;
  const s = stream(p2, { 'x-goim-cursor': '3' });
  s.push(sev(1000, 'first of two'));
  await tick(10);
  eq(ev.messages, [], 'nothing before the answer is whole');
  p2.ctl.error(new TypeError('terminated'));
  const p3 = await until(() => polls()[0], 'the poll after the cut');
  eq(p3.q.get('cursor'), '1', 'the answer asked for again');
  pollAnswer(p3, 3, sev(1000, 'first of two') + sev(1000, 'second of two'));
  await until(() => ev.messages.length === 2, 'both events');
  const p4 = await until(() => polls()[0], 'the next poll');
  eq(p4.q.get('cursor'), '3');
  eq(ev.messages.map((m) => m[1]), ['first of two', 'second of two']);
  eq(ev.states.filter((x) => x.startsWith('connected')).length, 1, 'no new auth');
  c.close();
});

await check('poll: without X-Goim-Session (a key no header can carry) op 8\'s session is used', async () => {
  fresh();
  const c = new GoimClient({ url: 'ws://comet:3102/sub', transport: 'poll', backoff: fast, transportStorage: false });
  await c.connect();
  const o = await until(() => opens()[0], 'the open');
  o.answered = true;
  o.resolve(new Response(auth8('k\u00e9', 'live://1', `${'Q'.repeat(22)}.k\u00e9`),
                         { status: 200, headers: { 'content-type': 'text/event-stream', 'x-goim-cursor': '1' } }));
  const p1 = await until(() => polls()[0], 'a poll');
  eq(p1.q.get('session'), `${'Q'.repeat(22)}.k\u00e9`);
  eq(c.state, 'connected');
  c.close();
});

await check('poll: a 200 that is no poll answer (a proxy\'s page) is retried after a delay, and after three the client authenticates anew', async () => {
  const { c, ev } = await pollUp();
  const n = opens().length;
  for (let i = 0; i < 3; i++) {
    const p = await until(() => polls()[0], `poll ${i + 1}`);
    eq(p.q.get('cursor'), '1');
    p.answered = true;
    p.resolve(new Response('<html>sign in to the wifi</html>', { status: 200, headers: { 'content-type': 'text/html' } }));
  }
  await until(() => opens()[n], 'a new open');
  eq(ev.errors.filter((e) => e.startsWith('poll: ')).length, 2);
  eq(ev.messages, []);
  c.close();
});

await check('poll: a held poll whose answer does not come within pollTimeout (its body included) is made again', async () => {
  const { c } = await pollUp({ pollTimeout: 0.05 });
  const p1 = await until(() => polls()[0], 'a poll');
  p1.answered = true;
  stream(p1, { 'x-goim-cursor': '2' }).push(sev(1000, 'half an answer'));
  const p2 = await until(() => polls()[0], 'the poll made again', 1000);
  eq([p1.aborted, p2.q.get('cursor')], [true, '1']);
  c.close();
});

await check('poll: 404 (the session is gone) authenticates again, with last_event_id under recover', async () => {
  const { c, ev } = await pollUp({ recover: true, mid: 92, recoverStorage: false });
  const p1 = await until(() => polls()[0], 'a poll');
  pollAnswer(p1, 2, sev(1000, 'r9', `${E}:9/`));
  const p2 = await until(() => polls()[0], 'the next poll');
  const n = opens().length;
  p2.answered = true;
  answer(p2, 404, envelope(404, 'no poll session with this key: authenticate again'));
  const o = await until(() => opens()[n], 'a new open');
  eq(o.q.get('last_event_id'), `${E}:9/`);
  eq(JSON.parse(o.headers['x-goim-token']).room_pos, `${E}:9`);
  pollAnswer(o, 3, auth8('pk') + sev(1000, 'r10', `${E}:10/`)
                   + sev(21, `{"stream":"room","room":"live://1","pos":"${E}:10","recovered":true,"missed":1}`, `${E}:10/`));
  await until(() => ev.recoveries.length, 'the recovery');
  eq(ev.messages.map((m) => [m[1], m[2].pos]), [['r9', `${E}:9`], ['r10', `${E}:10`]]);
  eq(ev.closes, ['poll 404']);
  c.close();
});

await check('poll: control calls carry the poll session; their replies come in the next answer', async () => {
  const { c } = await pollUp({ ack: true, ackStorage: false });
  await until(() => controls().some(([op, b]) => op === OP.ACK && b === ''), 'the empty op 18');
  const last = reqs('/sse/control').pop();
  eq(last.q.get('session'), `${'P'.repeat(22)}.pk`);
  const p = c.changeRoom('live://5');
  await until(() => controls().some(([op, b]) => op === OP.CHANGE_ROOM && b === 'live://5'), 'op 12');
  const p1 = await until(() => polls()[0], 'a poll');
  pollAnswer(p1, 2, sev(13, 'live://5'));
  eq(await p, 'live://5');
  c.close();
});

await check('auto: WebSocket that never opens, twice, then SSE; SSE unreachable twice, then long-poll; kept in sessionStorage', async () => {
  FakeWS.refuse = true;
  fresh((req) => {
    if (autoControl(req)) return;
    if (req.path === '/sse') { req.answered = true; req.reject(new TypeError('fetch failed')); }
  });
  const c = new GoimClient({ url: 'ws://comet:3102/sub', backoff: fast, transportStorage: 'goim.transport.t1' });
  const ev = watch(c);
  const ws0 = FakeWS.all.length, sse0 = reqs('/sse').length, open0 = opens().length;
  await c.connect();
  const o = await until(() => opens()[open0], 'the long-poll open', 2000);
  eq([FakeWS.all.length - ws0, reqs('/sse').length - sse0], [2, 2]);
  eq(ev.fallbacks, ['ws>sse', 'sse>poll']);
  pollAnswer(o, 1, auth8('pk'));
  await until(() => c.state === 'connected', 'connected');
  eq(c.transport, 'poll');
  eq(store.get('goim.transport.t1'), 'poll');
  c.close();
  // the page's next client (a reload) starts where it ended
  const d = new GoimClient({ url: 'ws://comet:3102/sub', backoff: fast, transportStorage: 'goim.transport.t1' });
  eq(d.transport, 'poll');
  FakeWS.refuse = false;
});

await check('auto: a WebSocket closed after op 7 (a refused token) does not count; one that opens but stays silent does', async () => {
  fresh();
  const c = new GoimClient({ url: 'ws://comet:3102/sub', backoff: fast, transportStorage: false, openTimeout: 0.03 });
  const ev = watch(c);
  await c.connect();
  for (let i = 0; i < 3; i++) {
    const ws = await until(() => { const w = FakeWS.all[FakeWS.all.length - 1]; return w.readyState === 1 && w.sent.length && !w.done && w; }, 'a socket');
    ws.done = true;
    ws.drop(1006);
  }
  eq([c.transport, ev.fallbacks], ['ws', []]);
  // now the sockets open and say nothing: after two, SSE
  const n = reqs('/sse').length;
  await until(() => reqs('/sse').length > n, 'the SSE attempt', 2000);
  eq(ev.fallbacks, ['ws>sse']);
  c.close();
});

await check('a forced transport never falls back', async () => {
  FakeWS.refuse = true;
  const c = new GoimClient({ url: 'ws://comet:3102/sub', transport: 'ws', backoff: fast, transportStorage: false });
  const ev = watch(c);
  const n = FakeWS.all.length;
  await c.connect();
  await until(() => FakeWS.all.length >= n + 5, 'five attempts');
  c.close();
  FakeWS.refuse = false;
  eq([c.transport, ev.fallbacks], ['ws', []]);
  let threw = false;
  try { new GoimClient({ transport: 'carrier-pigeon' }); } catch (e) { threw = true; }
  eq(threw, true, 'an unknown transport is refused');
});

await check('URLs: sseUrl, pollUrl, controlUrl given win; wss gives https', () => {
  const c = new GoimClient({ url: 'wss://push.example:443/sub', transportStorage: false });
  eq([c.sseUrl(), c.pollUrl(), c.controlUrl()], ['https://push.example/sse', 'https://push.example/poll', 'https://push.example/sse/control']);
  const d = new GoimClient({ url: 'ws://a/sub', sseUrl: '/s', pollUrl: '/p', controlUrl: '/c', transportStorage: false });
  eq([d.sseUrl(), d.pollUrl(), d.controlUrl()], ['/s', '/p', '/c']);
});

process.exit(failed ? 1 : 0);
