// Drives the demo page (clients/demo) in Debian's headless chromium through
// playwright-core; run by t/070-browser.t, which starts the stack and reads
// one result per line on stdout: "ok <name>" or "not ok <name>: <detail>".
// Environment: BASE (http://127.0.0.1:PORT, the API/WebSocket server),
// RELOAD (a shell command that reloads nginx), OUT (a directory for the
// screenshot and the browser profile), CHROMIUM (default /usr/bin/chromium).
import { execSync } from 'node:child_process';
import { join } from 'node:path';
import { api, base, check, failures, launch, out, push, report, scale } from './lib.mjs';

const wsUrl = base.replace(/^http/, 'ws') + '/sub';
const browser = await launch();
const ctx = browser.ctx;

try {
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ ws: wsUrl, mid: '4242', room: 'live://4242', heartbeat: '1' });
  await page.goto(`${base}/demo/?${q}`);

  const messages = () => page.evaluate(() => window.goimDemo.messages);
  const waitText = (text, timeout = 5000 * scale) => page.waitForFunction(
    (t) => window.goimDemo.messages.some((m) => m.text === t), text, { timeout });

  await check('the page connects and authenticates', async () => {
    await page.waitForFunction(() => document.getElementById('state').textContent === 'connected', null, { timeout: 8000 * scale });
  });

  await check('the page shows the key the server chose', async () => {
    const info = await page.textContent('#conn-info');
    if (!/mid 4242, key [0-9a-f-]{36} in live:\/\/4242/.test(info)) throw new Error(info);
  });

  await check('the room online count from heartbeat replies shows this client', async () => {
    await page.waitForFunction(() => Number(document.getElementById('online').textContent) >= 1, null, { timeout: 5000 * scale });
  });

  await check('a room push sent from the page form arrives', async () => {
    await page.selectOption('#push-to', 'room');
    await page.fill('#push-body', 'hello room live://4242');
    await page.click('#push-form button[type=submit]');
    await waitText('hello room live://4242');
    /* the push travels faster than its HTTP answer is shown: wait for it */
    await page.waitForFunction(() => document.getElementById('push-result').textContent !== '', null, { timeout: 5000 * scale });
    const r = await page.textContent('#push-result');
    if (!r.startsWith('200 {"code":0')) throw new Error(`push result: ${r}`);
  });

  await check('a mid push arrives with its operation', async () => {
    await push('mids?operation=1001&mids=4242', 'hello mid 4242 ✓');
    await waitText('hello mid 4242 ✓');
    const m = (await messages()).find((x) => x.text === 'hello mid 4242 ✓');
    if (m.op !== 1001) throw new Error(`op ${m.op}`);
  });

  await check('an operation the client did not accept is not delivered', async () => {
    await push('mids?operation=1999&mids=4242', 'not accepted');
    await push('mids?operation=1002&mids=4242', 'accepted');
    await waitText('accepted');
    if ((await messages()).some((m) => m.text === 'not accepted')) throw new Error('delivered');
  });

  await check('the curl lines name the page\'s mid and room', async () => {
    const t = await page.textContent('#curl');
    for (const want of ['mids=4242', 'type=live&room=4242', '/goim/push/all?operation=']) {
      if (!t.includes(want)) throw new Error(`no ${want} in ${t}`);
    }
  });

  await page.screenshot({ path: join(out, 'demo.png'), fullPage: true });

  await check('it stays connected across nginx -s reload (the hand-off)', async () => {
    const before = await page.evaluate(() => window.goimDemo.states.length);
    const handedOff = async () => (await (await api('/status')).json()).handoff.handed_off;
    const was = await handedOff();
    execSync(process.env.RELOAD, { stdio: 'ignore' });
    const deadline = Date.now() + 10000 * scale;
    while (await handedOff() <= was) {
      if (Date.now() > deadline) throw new Error('the reload did not hand the page\'s connection on');
      await new Promise((r) => setTimeout(r, 50));
    }
    await push('mids?operation=1000&mids=4242', 'after the reload');
    await waitText('after the reload');
    const states = await page.evaluate((n) => window.goimDemo.states.slice(n), before);
    if (states.includes('reconnecting')) throw new Error(`it reconnected: ${states.join(' ')}`);
  });

  await check('change room (op 12): pushes to the new room arrive, to the old one not', async () => {
    const r = await page.evaluate(() => window.goimDemo.client.changeRoom('live://4243'));
    if (r !== 'live://4243') throw new Error(`changeRoom resolved with ${r}`);
    await push('room?operation=1000&type=live&room=4242', 'old room');
    await push('room?operation=1000&type=live&room=4243', 'in the new room');
    await waitText('in the new room');
    if ((await messages()).some((m) => m.text === 'old room')) throw new Error('old room delivered');
    if (await page.inputValue('#room') !== 'live://4243') throw new Error('the form still shows the old room');
  });

  await check('sub (op 14) and unsub (op 16) change what arrives', async () => {
    await page.evaluate(() => window.goimDemo.client.sub([1003]));
    await push('mids?operation=1003&mids=4242', 'subscribed 1003');
    await waitText('subscribed 1003');
    await page.evaluate(() => window.goimDemo.client.unsub([1003]));
    await push('mids?operation=1003&mids=4242', 'unsubscribed 1003');
    await push('mids?operation=1000&mids=4242', 'after unsub');
    await waitText('after unsub');
    if ((await messages()).some((m) => m.text === 'unsubscribed 1003')) throw new Error('delivered after unsub');
  });

  // goim's own examples/javascript/client.js, as reference §7.1 describes
  // it: auth ver 1 op 7 seq 1, op 9 frames opened from offset 16
  await check('goim\'s client.js protocol handling receives a push', async () => {
    const got = page.evaluate(([url, ms]) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      const te = new TextEncoder(), td = new TextDecoder();
      ws.onopen = () => {
        const body = te.encode('{"mid":4343, "room_id":"live://1000", "platform":"web", "accepts":[1000,1001,1002]}');
        const buf = new ArrayBuffer(16 + body.length), v = new DataView(buf);
        v.setInt32(0, 16 + body.length); v.setInt16(4, 16); v.setInt16(6, 1); v.setInt32(8, 7); v.setInt32(12, 1);
        new Uint8Array(buf).set(body, 16);
        ws.send(buf);
      };
      ws.onmessage = (e) => {
        const v = new DataView(e.data), op = v.getInt32(8);
        if (op === 8) { window.clientJsAuthed = true; return; }
        if (op === 9) {
          for (let off = 16; off < e.data.byteLength; ) {
            const len = v.getInt32(off), hl = v.getInt16(off + 4);
            resolve(td.decode(e.data.slice(off + hl, off + len)));
            off += len;
          }
        }
      };
      setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
    }), [wsUrl, 5000 * scale]);
    await page.waitForFunction(() => window.clientJsAuthed === true, null, { timeout: 5000 * scale });
    await push('mids?operation=1000&mids=4343', 'to client.js');
    const text = await got;
    if (text !== 'to client.js') throw new Error(text);
  });

  // ensure messages (ops 18 and 19): the demo acknowledges them (ack: true)
  await check('an ensure push sent while the page is disconnected arrives once it reconnects, exactly once', async () => {
    await page.click('#disconnect');
    await page.waitForFunction(() => document.getElementById('state').textContent === 'closed', null, { timeout: 5000 * scale });
    // job keeps it for the offline mid
    const r = await api('/goim/push/mids?operation=1000&mids=4242&ensure=1', { method: 'POST', body: 'ensured while away' });
    const j = await r.json();
    if (r.status !== 200 || j.code !== 0 || !j.data || !j.data.id) throw new Error(`push: ${r.status} ${JSON.stringify(j)}`);
    const id = j.data.id;
    if ((await messages()).some((m) => m.text === 'ensured while away')) throw new Error('delivered while disconnected');
    await page.click('#connect');
    await waitText('ensured while away', 10000 * scale);
    const got = (await messages()).filter((m) => m.text === 'ensured while away');
    if (got.length !== 1 || got[0].id !== id || !(got[0].seq > 0) || got[0].op !== 1000) throw new Error(JSON.stringify(got));
    const li = await page.textContent('#messages li.ensure');
    if (!li.includes(`ensure ${id}`)) throw new Error(`the list shows ${li}`);
    // acknowledged: job's receipt says delivered
    const deadline = Date.now() + 10000 * scale;
    for (;;) {
      const rc = await (await api(`/goim/push/receipts?id=${id}`)).json();
      const st = rc.data && rc.data[0] && rc.data[0].state;
      if (st === 'delivered') break;
      if (Date.now() > deadline) throw new Error(`receipt: ${JSON.stringify(rc)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    // a second ensure push, online this time, comes after it: still once each
    await push('mids?operation=1000&mids=4242&ensure=1', 'ensured while here');
    await waitText('ensured while here');
    const all = (await messages()).filter((m) => m.text.startsWith('ensured while'));
    if (all.length !== 2) throw new Error(`delivered ${all.length} times: ${JSON.stringify(all)}`);
    const st = await page.evaluate(() => window.goimDemo.client.ackStats);
    if (st.ensure < 2 || st.acked < 1) throw new Error(`ackStats ${JSON.stringify(st)}`);
  });

  await check('the ensure ids the page saw are kept in sessionStorage, for a reload', async () => {
    // saved when the ids go out in an op 18 (within 100 ms of their arrival)
    await page.waitForFunction(() => {
      const ids = JSON.parse(sessionStorage.getItem('goim.ack.4242') || '[]');
      const seen = window.goimDemo.messages.filter((m) => m.id).map((m) => m.id);
      return seen.length === 2 && seen.every((id) => ids.includes(id));
    }, null, { timeout: 5000 * scale });
  });

  // room recovery (ops 20 and 21): the demo asks for positions (recover:
  // true) and t/070's comet keeps 1000 messages a room
  // (goim_comet_room_history), so what a room sent while the page was
  // away comes when it is back, once each and in order
  const recovery = () => page.textContent('#recovery');
  const waitRecovery = (n) => page.waitForFunction(
    (k) => window.goimDemo.recoveries.filter((r) => r.stream === 'room').length >= k, n, { timeout: 10000 * scale });
  const roomRecoveries = async () => (await page.evaluate(() => window.goimDemo.recoveries)).filter((r) => r.stream === 'room');
  // the texts arrived once each, in this order, each a room message with
  // a position one past the one before
  const inOrder = async (texts) => {
    const ms = await messages();
    const got = ms.filter((m) => texts.includes(m.text));
    if (got.map((m) => m.text).join('|') !== texts.join('|')) throw new Error(`got ${JSON.stringify(got)}`);
    const seqs = got.map((m) => { if (m.stream !== 'room' || !/^\d+:\d+$/.test(m.pos)) throw new Error(`no position: ${JSON.stringify(m)}`); return m.pos.split(':').map(Number); });
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i][0] !== seqs[0][0] || seqs[i][1] !== seqs[i - 1][1] + 1) throw new Error(`positions ${got.map((m) => m.pos).join(' ')}`);
    }
  };
  const roomPush = (room, body) => {
    const i = room.indexOf('://');
    return push(`room?operation=1000&type=${room.slice(0, i)}&room=${encodeURIComponent(room.slice(i + 3))}`, body);
  };

  await check('room messages pushed while the page is disconnected arrive once each, in order, when it reconnects; the recovery line says recovered, 3 missed', async () => {
    const room = await page.inputValue('#room');     // live://4243, changed to above
    const before = (await roomRecoveries()).length;
    await page.click('#disconnect');
    await page.waitForFunction(() => document.getElementById('state').textContent === 'closed', null, { timeout: 5000 * scale });
    const texts = ['missed room 1', 'missed room 2', 'missed room 3'];
    for (const t of texts) await roomPush(room, t);
    if ((await messages()).some((m) => texts.includes(m.text))) throw new Error('delivered while disconnected');
    await page.click('#connect');
    // op 21 comes after what was missed: both are there once it is
    await waitRecovery(before + 1);
    const r = (await roomRecoveries())[before];
    if (!r.recovered || !r.asked || r.missed !== 3 || r.room !== room) throw new Error(`op 21 ${JSON.stringify(r)}`);
    await inOrder(texts);
    const line = await recovery();
    if (!line.includes(`room ${room}: recovered, 3 missed`)) throw new Error(`the recovery line says ${line}`);
    const li = await page.textContent('#messages li.positioned');
    if (!li.includes('missed room 3') || !li.includes(`room · ${r.pos}`)) throw new Error(`the list shows ${li}`);
    // live room messages go on from there, with the next position
    await roomPush(room, 'live after recovery');
    await waitText('live after recovery');
    await inOrder([...texts, 'live after recovery']);
  });

  await check('a change back to a room it was in (op 12 with its position) brings what that room sent meanwhile', async () => {
    // 'old room' went to live://4242 while the page was in live://4243
    const before = (await roomRecoveries()).length;
    await page.evaluate(() => window.goimDemo.client.changeRoom('live://4242'));
    await waitRecovery(before + 1);
    const r = (await roomRecoveries())[before];
    if (!r.recovered || !r.asked || r.missed !== 1 || r.room !== 'live://4242') throw new Error(`op 21 ${JSON.stringify(r)}`);
    const got = (await messages()).filter((m) => m.text === 'old room');
    if (got.length !== 1 || got[0].stream !== 'room') throw new Error(JSON.stringify(got));
    const line = await recovery();
    if (!line.includes('room live://4242: recovered, 1 missed')) throw new Error(`the recovery line says ${line}`);
  });

  await check('after a reload of the page (positions in sessionStorage) it resumes too', async () => {
    await page.waitForFunction(() => JSON.parse(sessionStorage.getItem('goim.pos.4242') || '{}').rooms?.['live://4242'], null, { timeout: 5000 * scale });
    await page.click('#disconnect');
    await page.waitForFunction(() => document.getElementById('state').textContent === 'closed', null, { timeout: 5000 * scale });
    const texts = ['while reloading 1', 'while reloading 2'];
    for (const t of texts) await roomPush('live://4242', t);
    await page.reload();     // the page's URL joins live://4242 again
    await page.waitForFunction(() => window.goimDemo && window.goimDemo.states.includes('connected'), null, { timeout: 8000 * scale });
    await waitRecovery(1);
    const r = (await roomRecoveries())[0];
    if (!r.recovered || !r.asked || r.missed !== 2) throw new Error(`op 21 ${JSON.stringify(r)}`);
    await inOrder(texts);
    const ms = await messages();
    if (ms.length !== 2) throw new Error(`the reloaded page got ${JSON.stringify(ms)}`);
    const line = await recovery();
    if (!line.includes('room live://4242: recovered, 2 missed')) throw new Error(`the recovery line says ${line}`);
  });

  await check('a position the history cannot serve (another epoch) shows "gap too old: reload"', async () => {
    // as if the page had seen live://4245 in a job run long gone
    await page.evaluate(() => sessionStorage.setItem('goim.pos.4245', JSON.stringify({ rooms: { 'live://4245': '1:7' } })));
    const q1 = new URLSearchParams({ ws: wsUrl, mid: '4245', room: 'live://4245', heartbeat: '1' });
    await page.goto(`${base}/demo/?${q1}`);
    await waitRecovery(1);
    const r = (await roomRecoveries())[0];
    if (r.recovered || !r.asked) throw new Error(`op 21 ${JSON.stringify(r)}`);
    const line = await recovery();
    if (!line.includes('room live://4245: gap too old: reload')) throw new Error(`the recovery line says ${line}`);
    // and from the next message on it goes on as usual
    await roomPush('live://4245', 'after the gap');
    await waitText('after the gap');
    const m = (await messages()).find((x) => x.text === 'after the gap');
    if (m.stream !== 'room' || !/^\d+:1$/.test(m.pos)) throw new Error(JSON.stringify(m));
  });

  await check('with recover=0 the page is a plain goim client: room messages without positions, no recovery line', async () => {
    const q0 = new URLSearchParams({ ws: wsUrl, mid: '4244', room: 'live://4244', heartbeat: '1', recover: '0' });
    await page.goto(`${base}/demo/?${q0}`);
    await page.waitForFunction(() => document.getElementById('state').textContent === 'connected', null, { timeout: 8000 * scale });
    await roomPush('live://4244', 'plain room push');
    await waitText('plain room push');
    const m = (await messages()).find((x) => x.text === 'plain room push');
    if (m.pos !== undefined || m.stream !== undefined) throw new Error(JSON.stringify(m));
    if (await recovery() !== '') throw new Error(`the recovery line says ${await recovery()}`);
  });

  await check('over /subz (goim_comet_ws_deflate on) chromium negotiates permessage-deflate itself and goim.js gets the compressed pushes whole', async () => {
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    let ext = null;
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
      for (const [k, v] of Object.entries(e.response.headers)) if (k.toLowerCase() === 'sec-websocket-extensions') ext = v;
    });
    const stats = async () => (await (await api('/status')).json()).deflate;
    const before = await stats();
    const qz = new URLSearchParams({ ws: wsUrl + 'z', mid: '4246', room: 'live://4246', heartbeat: '1', recover: '0' });
    await page.goto(`${base}/demo/?${qz}`);
    await page.waitForFunction(() => document.getElementById('state').textContent === 'connected', null, { timeout: 8000 * scale });
    // a JSON message well above goim_comet_ws_deflate_min_length, by mid and to the room
    const big = JSON.stringify({ type: 'chat', room: 'live://4246', lines: Array.from({ length: 12 }, (_, i) => `line ${i} of a message compressed on the wire ✓`) });
    await push('mids?operation=1001&mids=4246', big);
    await roomPush('live://4246', big + ' (room)');
    await waitText(big);
    await waitText(big + ' (room)');
    if (!ext || !/^permessage-deflate\b/.test(ext) || !/server_no_context_takeover/.test(ext)) throw new Error(`the 101 answered extensions: ${ext}`);
    const after = await stats();
    if (after.frames < before.frames + 2) throw new Error(`compressed frames ${before.frames} -> ${after.frames}`);
    if (after.bytes_out >= after.bytes_in) throw new Error(`no smaller: ${JSON.stringify(after)}`);
    // chromium compresses its own messages too (auth, heartbeats): comet inflated them
    if (after.inflated <= before.inflated) throw new Error(`nothing of the browser's inflated: ${JSON.stringify(after)}`);
    console.log(`# chromium answered "${ext}"; comet compressed ${after.messages - before.messages} message(s), inflated ${after.inflated - before.inflated} of the browser's`);
    await cdp.detach();
  });

  report(errors.length === 0, 'no page errors', errors.join('; '));
} catch (e) {
  report(false, 'browser run', e.message);
} finally {
  await browser.close();
}
process.exit(failures() ? 1 : 0);
