// The demo page: a GoimClient joined to a room, the pushes that arrive, the
// room's online count, a push form that calls logic's API, and its curl
// twin. Query parameters: ws (WebSocket URL, default ws://<this host>:3102/sub),
// transport (auto, ws, sse or poll: the selector's choice, default auto),
// sse, poll, control (comet's SSE, long-poll and control-call URLs,
// default /sse, /poll and /sse/control on this page's origin: fetch()
// reaches no other without CORS),
// api (the push API's base URL, default this page's origin), mid, room,
// accepts, heartbeat (seconds), open_timeout (seconds an attempt may take
// to its auth reply, goim.js's openTimeout), token (an opaque auth body, e.g. the JWT
// logic wants with goim_logic_jwt_secret_file), autoconnect (default 1),
// ack (default 1: the client acknowledges ensure messages, ops 18 and 19;
// ack=0 makes it a plain goim client), recover (default 1: room messages
// and broadcasts come with their positions, op 20, and what was missed
// while away is resumed, op 21; recover=0 turns it off, as in goim).
import { GoimClient, TRANSPORTS } from './goim.js';

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const api = (q.get('api') || location.origin).replace(/\/$/, '');
const wsUrl = q.get('ws') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:3102/sub`;

const httpUrl = (name, path) => q.get(name) || `${location.origin}${path}`;
const NAMES = { ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' };

for (const f of ['mid', 'room', 'accepts']) if (q.has(f)) $(f).value = q.get(f);
if (TRANSPORTS.includes(q.get('transport'))) $('transport').value = q.get('transport');

// states: each state's name; attempts: the transport of each attempt;
// transports: of each connect; fallbacks: {from, to, reason} each time
// 'auto' moved on
const demo = window.goimDemo = { client: null, messages: [], states: [], recoveries: [],
                                 attempts: [], transports: [], fallbacks: [] };

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString([], { hour12: false })}  ${text}`;
  $('log').prepend(li);
  while ($('log').children.length > 50) $('log').lastChild.remove();
}

function showState(s) {
  $('state').textContent = s.state + (s.state === 'reconnecting' ? ` in ${s.delay.toFixed(1)} s` : '');
  $('state').className = `badge state-${s.state}`;
  $('transport-used').textContent = NAMES[s.transport] || s.transport;
  $('transport-used').className = `badge transport${s.state === 'connected' ? ' in-use' : ''}`;
}

// extra: an ensure message's {id, seq} (ack), or a room message's or
// broadcast's {stream, pos, epoch, seq} (recover)
function addMessage(m, extra) {
  const ensure = extra && extra.id !== undefined ? extra : null;
  const position = extra && extra.stream ? extra : null;
  const entry = { op: m.op, text: m.text };
  if (ensure) Object.assign(entry, { id: ensure.id, seq: ensure.seq });
  if (position) Object.assign(entry, { stream: position.stream, pos: position.pos });
  demo.messages.push(entry);
  const li = document.createElement('li');
  const t = document.createElement('span');
  t.className = 'time';
  t.textContent = new Date().toLocaleTimeString([], { hour12: false });
  const op = document.createElement('span');
  op.className = 'op';
  op.textContent = `op ${m.op}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = m.text;
  li.append(t, op, text);
  if (ensure) {
    // an ensure message: its id and its place in the mid's mailbox
    li.className = 'ensure';
    const e = document.createElement('span');
    e.className = 'ensure-id';
    e.textContent = `ensure ${ensure.id} · seq ${ensure.seq}`;
    li.append(e);
  }
  if (position) {
    // a room message or broadcast: its position in its stream (EPOCH:SEQ)
    li.className = 'positioned';
    const e = document.createElement('span');
    e.className = 'pos';
    e.textContent = `${position.stream === 'all' ? 'broadcast' : 'room'} · ${position.pos}`;
    e.title = `epoch ${position.epoch} (job's run of this stream), seq ${position.seq}`;
    li.append(e);
  }
  $('messages').prepend(li);
  $('msg-count').textContent = demo.messages.length;
  $('no-messages').hidden = true;
}

// op 21, one per stream after each auth and change of room: how a resume
// went.  The room's is shown; both go to the log.
function showRecovery(r) {
  demo.recoveries.push(r);
  const what = r.stream === 'all' ? 'broadcasts' : `room ${r.room || ''}`.trim();
  let line, cls;
  if (r.recovered && r.asked) {
    line = `${what}: recovered, ${r.missed} missed`;
    cls = 'recovered';
  } else if (r.asked) {
    // named a position, but the gap is older than comet's history (or of
    // another epoch): what the page shows must be reloaded from the business
    line = `${what}: gap too old: reload`;
    cls = 'gap';
  } else {
    line = `${what}: nothing to resume`;
    cls = 'fresh';
  }
  line += r.pos ? ` (now at ${r.pos})` : '';
  log(`recovery: ${line}`);
  if (r.stream !== 'room') return;
  $('recovery').textContent = line;
  $('recovery').className = `hint recovery-${cls}`;
}

function connect() {
  if (demo.client) demo.client.close();
  const c = demo.client = new GoimClient({
    url: wsUrl,
    transport: $('transport').value,
    sseUrl: httpUrl('sse', '/sse'),
    pollUrl: httpUrl('poll', '/poll'),
    controlUrl: httpUrl('control', '/sse/control'),
    nodesUrl: `${api}/goim/nodes/weighted?platform=web`,
    mid: Number($('mid').value) || 0,
    room: $('room').value.trim(),
    accepts: $('accepts').value.split(',').map(Number).filter(Boolean),
    heartbeat: q.has('heartbeat') ? Number(q.get('heartbeat')) : undefined,
    openTimeout: q.has('open_timeout') ? Number(q.get('open_timeout')) : undefined,
    token: q.get('token') || undefined,
    ack: q.get('ack') !== '0',
    recover: q.get('recover') !== '0',
  });
  c.on('state', (s) => {
    demo.states.push(s.state);
    if (s.state === 'connecting') demo.attempts.push(s.transport);
    showState(s);
    log(s.state + (s.url ? ` ${s.url}` : '') + (s.delay != null ? ` (retry in ${s.delay.toFixed(1)} s, ${NAMES[s.transport]})` : ''));
    if (s.state === 'connected') {
      demo.transports.push(s.transport);
      const beat = s.transport === 'ws' ? `heartbeat every ${c.heartbeatSecs} s`
        : `no heartbeat over ${NAMES[s.transport]} (comet keeps the session)`;
      $('conn-info').textContent = `mid ${c.mid}${c.key ? `, key ${c.key}` : ''} in ${c.room || 'no room'}, accepts ${c.accepts.join(',')}; ${NAMES[s.transport]}, ${beat}`;
    }
  });
  c.on('fallback', (f) => {
    demo.fallbacks.push(f);
    log(`${NAMES[f.from]} failed ${c.fallbackAfter} times in a row (${f.reason}): trying ${NAMES[f.to]}`);
  });
  c.on('online', (n) => { $('online').textContent = n; });
  c.on('message', addMessage);
  c.on('recovery', showRecovery);
  c.on('room', (r) => { $('room').value = r.room; $('online').textContent = '–'; log(`now in ${r.room}`); updateCurl(); });
  c.on('close', (e) => log(`closed (${e.code})`));
  c.on('state', (s) => {
    if (s.state === 'connected' && c.ack) log('acknowledging ensure messages (op 18)');
    if (s.state === 'connected' && c.recover) log('asking for room positions (op 20)');
  });
  c.on('error', (e) => log(`${e.where}: ${e.error.message}${e.where === 'nodes' ? ' (default heartbeat and backoff)' : ''}`));
  c.connect();
  updateCurl();
}

// the online count: heartbeat replies carry it; ask now and then
setInterval(() => demo.client && demo.client.heartbeat(), 10000);

function roomParts() {
  const r = $('room').value.trim();
  const i = r.indexOf('://');
  return i < 0 ? ['', r] : [r.slice(0, i), r.slice(i + 3)];
}

function pushUrl(to, op) {
  const p = new URLSearchParams({ operation: op });
  if (to === 'mids') p.set('mids', $('mid').value);
  if (to === 'mids' && $('push-ensure').checked) p.set('ensure', '1');
  if (to === 'room') { const [type, room] = roomParts(); p.set('type', type); p.set('room', room); }
  return `${api}/goim/push/${to}?${p}`;
}

function shellQuote(s) { return `'${s.replace(/'/g, `'\\''`)}'`; }

function updateCurl() {
  const op = $('push-op').value || '1000';
  const body = $('push-body').value;
  $('curl').textContent = ['mids', 'room', 'all']
    .map((to) => `curl -d ${shellQuote(body)} ${shellQuote(pushUrl(to, op))}`).join('\n\n');
}

$('join-form').addEventListener('submit', (e) => { e.preventDefault(); connect(); });
$('disconnect').addEventListener('click', () => demo.client && demo.client.close());
// another transport: a new connection on it
$('transport').addEventListener('change', () => { if (demo.client && demo.client.state !== 'closed') connect(); });
$('room-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try { await demo.client.changeRoom($('new-room').value.trim()); } catch (err) { log(`change room: ${err.message}`); }
});
const ops = () => $('sub-ops').value.split(',').map(Number).filter(Boolean);
$('sub-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try { log(`accepts ${(await demo.client.sub(ops())).join(',')}`); } catch (err) { log(`sub: ${err.message}`); }
});
$('unsub').addEventListener('click', async () => {
  try { log(`accepts ${(await demo.client.unsub(ops())).join(',')}`); } catch (err) { log(`unsub: ${err.message}`); }
});
for (const id of ['push-op', 'push-body', 'push-to', 'push-ensure', 'mid', 'room']) $(id).addEventListener('input', updateCurl);

$('push-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const url = pushUrl($('push-to').value, $('push-op').value || '1000');
  try {
    const r = await fetch(url, { method: 'POST', body: $('push-body').value });
    $('push-result').textContent = `${r.status} ${await r.text()}`;
  } catch (err) {
    $('push-result').textContent = `failed: ${err.message}`;
  }
});

updateCurl();
if (q.get('autoconnect') !== '0') connect();
