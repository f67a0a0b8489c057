// goim.js's transports in a real browser: the demo page forced onto each
// one (?transport=ws|sse|poll) connects over it, shows it, gets a room
// push from its form and a mid push, changes room, subscribes, gets an
// ensure push made while it was away (acked: op 18 as a control call over
// SSE and long-poll) and the room messages it missed (recovery:
// last_event_id over SSE and long-poll) and, over SSE and long-poll, comes
// back after nginx -s reload closed its session.  Then 'auto': with the
// WebSocket refused (its upgrade answered 404) it falls back to SSE and
// keeps it across a reload of the page; with the WebSocket swallowed by
// the page's route (open, silent) it falls back to SSE too; with SSE's GET
// blocked by the page's route as well, to long-poll; a token logic refuses
// is retried on the same transport, never falling back.  Run by
// t/070-browser.t after sse.mjs, on the same stack (RELOAD reloads its
// nginx).  The long-poll checks need comet's goim_comet_poll at /poll:
// without it (t/070 adds the location only when the module has the
// directive) they are reported as skipped.
import { execSync } from 'node:child_process';
import { api, base, check, failures, launch, push, report, scale } from './lib.mjs';

const wsUrl = base.replace(/^http/, 'ws') + '/sub';
const NAMES = { ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' };
const browser = await launch();
const ctx = browser.ctx;

// comet's long-poll location answers a GET without a token with its 401
const hasPoll = await (async () => {
  const r = await api('/poll');
  const t = await r.text();
  return r.status === 401 && t.startsWith('{"code":-401');
})();

const errors = [];
const demoUrl = (params) => `${base}/demo/?${new URLSearchParams({ ws: wsUrl, heartbeat: '1', ...params })}`;

async function newPage() {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  return page;
}

function helpers(page) {
  const messages = () => page.evaluate(() => window.goimDemo.messages);
  return {
    messages,
    waitText: (text, timeout = 8000 * scale) => page.waitForFunction(
      (t) => window.goimDemo.messages.some((m) => m.text === t), text, { timeout }),
    waitConnected: (timeout = 10000 * scale) => page.waitForFunction(
      () => document.getElementById('state').textContent === 'connected', null, { timeout }),
    waitClosed: () => page.waitForFunction(
      () => document.getElementById('state').textContent === 'closed', null, { timeout: 5000 * scale }),
    demo: () => page.evaluate(() => {
      const d = window.goimDemo;
      return { attempts: d.attempts, transports: d.transports, fallbacks: d.fallbacks.map((f) => `${f.from}>${f.to}`),
               transport: d.client && d.client.transport };
    }),
  };
}

const roomPush = (room, body) => {
  const i = room.indexOf('://');
  return push(`room?operation=1000&type=${room.slice(0, i)}&room=${encodeURIComponent(room.slice(i + 3))}`, body);
};

// a WebSocket URL whose upgrade the server refuses (404: no such
// location, as behind a proxy without WebSocket): the socket never opens
const refusedWs = base.replace(/^http/, 'ws') + '/no-websocket-here';

// the page's route takes the WebSocket and never answers (a middlebox that
// completes the upgrade and swallows the frames): no op 8 comes
async function swallowWebSocket(page) {
  await page.routeWebSocket((u) => u.pathname === '/sub', () => {});
}

// SSE's GET refused the same way (its control calls are another path)
async function blockSse(page) {
  await page.route((u) => u.pathname === '/sse', (route) => route.abort('blockedbyclient'));
}

try {
  for (const [t, mid] of [['ws', 4701], ['sse', 4702], ['poll', 4703]]) {
    const name = NAMES[t];
    if (t === 'poll' && !hasPoll) {
      console.log('# skip: the long-poll checks of the forced page (no goim_comet_poll at /poll on this comet)');
      continue;
    }
    const room = `live://${mid}`;
    const page = await newPage();
    const h = helpers(page);
    await page.goto(demoUrl({ transport: t, mid: String(mid), room }));

    await check(`${name}: the page forced onto ${name} (?transport=${t}) connects over it and shows it`, async () => {
      await h.waitConnected();
      const d = await h.demo();
      if (d.transport !== t || d.transports.join() !== t || d.attempts.some((a) => a !== t)) throw new Error(JSON.stringify(d));
      const badge = await page.textContent('#transport-used');
      if (badge !== name) throw new Error(`the badge says ${badge}`);
      if (await page.inputValue('#transport') !== t) throw new Error('the selector does not show it');
      const info = await page.textContent('#conn-info');
      if (!info.includes(`mid ${mid}, key `) || !info.includes(name)) throw new Error(info);
    });

    await check(`${name}: a room push sent from the page's form arrives`, async () => {
      await page.selectOption('#push-to', 'room');
      await page.fill('#push-body', `room push over ${t}`);
      await page.click('#push-form button[type=submit]');
      await h.waitText(`room push over ${t}`);
      const m = (await h.messages()).find((x) => x.text === `room push over ${t}`);
      if (m.stream !== 'room' || !/^\d+:\d+$/.test(m.pos)) throw new Error(`no room position: ${JSON.stringify(m)}`);
    });

    await check(`${name}: a mid push arrives with its operation, a binary one byte for byte`, async () => {
      await push(`mids?operation=1001&mids=${mid}`, `mid push over ${t} ✓`);
      await h.waitText(`mid push over ${t} ✓`);
      const m = (await h.messages()).find((x) => x.text === `mid push over ${t} ✓`);
      if (m.op !== 1001) throw new Error(`op ${m.op}`);
      await page.evaluate(() => {
        window.binary = null;
        window.goimDemo.client.on('message', (x) => { if (x.op === 1002) window.binary = Array.from(x.body); });
      });
      await push(`mids?operation=1002&mids=${mid}`, new Uint8Array([0, 255, 10, 13, 1]));
      await page.waitForFunction(() => window.binary, null, { timeout: 8000 * scale });
      const bytes = await page.evaluate(() => window.binary);
      if (bytes.join(',') !== '0,255,10,13,1') throw new Error(bytes.join(','));
    });

    await check(`${name}: the room's online count shows this client`, async () => {
      await page.waitForFunction(() => Number(document.getElementById('online').textContent) >= 1, null, { timeout: 8000 * scale });
    });

    await check(`${name}: change room: pushes to the new room arrive, to the old one not`, async () => {
      const r = await page.evaluate((to) => window.goimDemo.client.changeRoom(to), `live://${mid}0`);
      if (r !== `live://${mid}0`) throw new Error(`changeRoom resolved with ${r}`);
      await roomPush(room, `old room over ${t}`);
      await roomPush(`live://${mid}0`, `new room over ${t}`);
      await h.waitText(`new room over ${t}`);
      if ((await h.messages()).some((m) => m.text === `old room over ${t}`)) throw new Error('the old room\'s push came');
      if (await page.inputValue('#room') !== `live://${mid}0`) throw new Error('the form shows the old room');
    });

    await check(`${name}: sub and unsub change what arrives`, async () => {
      await page.evaluate(() => window.goimDemo.client.sub([1003]));
      await push(`mids?operation=1003&mids=${mid}`, `subscribed over ${t}`);
      await h.waitText(`subscribed over ${t}`);
      await page.evaluate(() => window.goimDemo.client.unsub([1003]));
      await push(`mids?operation=1003&mids=${mid}`, `unsubscribed over ${t}`);
      await push(`mids?operation=1000&mids=${mid}`, `after unsub over ${t}`);
      await h.waitText(`after unsub over ${t}`);
      if ((await h.messages()).some((m) => m.text === `unsubscribed over ${t}`)) throw new Error('delivered after unsub');
    });

    await check(`${name}: an ensure push made while the page is away arrives once when it is back, and is acknowledged`, async () => {
      await page.click('#disconnect');
      await h.waitClosed();
      const r = await api(`/goim/push/mids?operation=1000&mids=${mid}&ensure=1`, { method: 'POST', body: `ensured over ${t}` });
      const j = await r.json();
      if (r.status !== 200 || !j.data || !j.data.id) throw new Error(`push: ${r.status} ${JSON.stringify(j)}`);
      const before = await page.evaluate(() => window.goimDemo.recoveries.length);
      // missed room messages too: the page resumes the room it was in
      await roomPush(`live://${mid}0`, `missed over ${t} 1`);
      await roomPush(`live://${mid}0`, `missed over ${t} 2`);
      await page.click('#connect');
      await h.waitConnected();
      await h.waitText(`ensured over ${t}`);
      const got = (await h.messages()).filter((m) => m.text === `ensured over ${t}`);
      if (got.length !== 1 || got[0].id !== j.data.id) throw new Error(JSON.stringify(got));
      const deadline = Date.now() + 10000 * scale;
      for (;;) {
        const rc = await (await api(`/goim/push/receipts?id=${j.data.id}`)).json();
        if (rc.data && rc.data[0] && rc.data[0].state === 'delivered') break;
        if (Date.now() > deadline) throw new Error(`receipt: ${JSON.stringify(rc)}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      await page.waitForFunction((n) => window.goimDemo.recoveries.slice(n).some((x) => x.stream === 'room'),
                                 before, { timeout: 10000 * scale });
      const rec = (await page.evaluate((n) => window.goimDemo.recoveries.slice(n), before)).find((x) => x.stream === 'room');
      if (!rec.recovered || !rec.asked || rec.missed !== 2) throw new Error(`op 21 ${JSON.stringify(rec)}`);
      const ms = (await h.messages()).filter((m) => m.text.startsWith(`missed over ${t}`)).map((m) => m.text);
      if (ms.join('|') !== `missed over ${t} 1|missed over ${t} 2`) throw new Error(`missed: ${ms.join('|')}`);
    });

    if (t !== 'ws') {
      // (WebSocket clients are handed on by a reload: demo.mjs checks it)
      await check(`${name}: nginx -s reload closes the session; the page authenticates again and gets the room message pushed meanwhile, once`, async () => {
        const connects = (await h.demo()).transports.length;
        const moved = async () => {
          const hd = (await (await api('/status')).json()).handoff;
          return hd.sessions_adopted + hd.sessions_closed;
        };
        const was = await moved();
        execSync(process.env.RELOAD, { stdio: 'ignore' });
        // job's push connection is the new workers' once they adopted it:
        // from then on their history keeps the room's messages
        const deadline = Date.now() + 10000 * scale;
        while (await moved() <= was) {
          if (Date.now() > deadline) throw new Error('job\'s push connection did not move to the new workers');
          await new Promise((r) => setTimeout(r, 50));
        }
        await roomPush(`live://${mid}0`, `across the reload over ${t}`);
        await page.waitForFunction((n) => window.goimDemo.transports.length > n, connects, { timeout: 15000 * scale });
        await h.waitText(`across the reload over ${t}`, 10000 * scale);
        const d = await h.demo();
        if (d.transports.slice(connects).some((x) => x !== t)) throw new Error(`reconnected over ${d.transports.join()}`);
        const n = (await h.messages()).filter((m) => m.text === `across the reload over ${t}`).length;
        if (n !== 1) throw new Error(`it came ${n} times`);
      });
    }

    await page.close();
  }

  // 'auto': pages of their own (sessionStorage is the tab's)
  const fellBack = async (h, want) => {
    const d = await h.demo();
    const attempts = want === 'sse' ? 'ws,ws,sse' : 'ws,ws,sse,sse,poll';
    const fallbacks = want === 'sse' ? 'ws>sse' : 'ws>sse,sse>poll';
    if (d.transport !== want || d.attempts.join() !== attempts || d.fallbacks.join() !== fallbacks) throw new Error(JSON.stringify(d));
  };
  const page = await newPage();
  const h = helpers(page);

  await check('auto: with the WebSocket refused (its upgrade answered 404), the page falls back to SSE after 2 attempts and gets pushes', async () => {
    await page.goto(demoUrl({ transport: 'auto', ws: refusedWs, mid: '4710', room: 'live://4710' }));
    await h.waitConnected(40000 * scale);
    await fellBack(h, 'sse');
    if (await page.textContent('#transport-used') !== 'SSE') throw new Error('the badge does not say SSE');
    const kept = await page.evaluate(() => sessionStorage.getItem('goim.transport'));
    if (kept !== 'sse') throw new Error(`sessionStorage keeps ${kept}`);
    await push('mids?operation=1000&mids=4710', 'after the fallback');
    await h.waitText('after the fallback');
  });

  await check('auto: a reload of the page starts on SSE at once (the transport kept in sessionStorage)', async () => {
    await page.reload();
    await h.waitConnected();
    const d = await h.demo();
    if (d.attempts.join() !== 'sse' || d.fallbacks.length) throw new Error(JSON.stringify(d));
    await roomPush('live://4710', 'room after the reload');
    await h.waitText('room after the reload');
  });
  await page.close();

  await check('auto: with the WebSocket swallowed by the page\'s route (it opens, no op 8 within openTimeout), it falls back to SSE', async () => {
    const p = await newPage();
    const hp = helpers(p);
    await swallowWebSocket(p);
    await p.goto(demoUrl({ transport: 'auto', mid: '4712', room: 'live://4712', open_timeout: String(2 * scale) }));
    await hp.waitConnected(40000 * scale);
    await fellBack(hp, 'sse');
    await push('mids?operation=1000&mids=4712', 'after the silent socket');
    await hp.waitText('after the silent socket');
    await p.close();
  });

  await check('auto: a token logic refuses is not a transport failure: retried on WebSocket, and on SSE when SSE is the one kept, never falling back', async () => {
    const pages = [];
    for (const kept of ['ws', 'sse']) {
      const p = await newPage();
      // the tab's kept transport, as a page that connected before would have it
      if (kept === 'sse') await p.addInitScript(() => sessionStorage.setItem('goim.transport', 'sse'));
      await p.goto(demoUrl({ transport: 'auto', mid: '4713', room: 'live://4713', token: 'not a token logic takes' }));
      pages.push([kept, p]);
    }
    for (const [kept, p] of pages) {
      await p.waitForFunction(() => window.goimDemo.attempts.length >= 3, null, { timeout: 40000 * scale });
      const d = await helpers(p).demo();
      if (d.attempts.some((a) => a !== kept) || d.fallbacks.length || d.transports.length) throw new Error(`${kept}: ${JSON.stringify(d)}`);
      await p.close();
    }
  });

  if (hasPoll) {
    await check('auto: with the WebSocket refused and SSE\'s GET blocked by the page\'s route, it falls back to long-poll and gets pushes', async () => {
      const p = await newPage();
      const hp = helpers(p);
      await blockSse(p);
      await p.goto(demoUrl({ transport: 'auto', ws: refusedWs, mid: '4711', room: 'live://4711' }));
      await hp.waitConnected(60000 * scale);
      await fellBack(hp, 'poll');
      await push('mids?operation=1000&mids=4711', 'after two fallbacks');
      await hp.waitText('after two fallbacks');
      await roomPush('live://4711', 'room after two fallbacks');
      await hp.waitText('room after two fallbacks');
      await p.close();
    });
  } else {
    console.log('# skip: auto falling back to long-poll (no goim_comet_poll at /poll on this comet)');
  }

  report(errors.length === 0, 'no page errors in the transports run', errors.join('; '));
} catch (e) {
  report(false, 'transports browser run', e.message);
} finally {
  await browser.close();
}
process.exit(failures() ? 1 : 0);
