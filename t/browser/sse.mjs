// goim over Server-Sent Events in a real browser: chromium's own
// EventSource subscribes to the comet's goim_comet_sse location, gets
// pushes as events (text, and binary ones in base64), subscribes an
// operation by a control call made with fetch(), and, when nginx -s reload
// closes its stream, reconnects by itself with its Last-Event-ID and gets
// the room message it missed.  Run by t/070-browser.t after demo.mjs, on
// the same stack; RELOAD is the shell command that reloads nginx.
import { execSync } from 'node:child_process';
import { api, base, check, failures, launch, push, report, scale } from './lib.mjs';

const browser = await launch();
const token = JSON.stringify({ mid: 4301, key: 'sse-4301', room_id: 'live://4301',
                               accepts: [1000], recover: true });

try {
  const page = browser.ctx.pages()[0] || await browser.ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // any page of the server will do: EventSource and fetch() need its origin
  await page.goto(`${base}/status`);
  await page.evaluate((tok) => {
    const s = { events: [], opens: 0, errors: 0 };
    window.sse = s;
    s.es = new EventSource('/sse?token=' + encodeURIComponent(tok));
    s.es.onopen = () => { s.opens++; };
    s.es.onerror = () => { s.errors++; };
    for (const name of ['8', '15', '21', '1000', '1000.b64', '1001']) {
      s.es.addEventListener(name, (e) => s.events.push({ name, data: e.data, id: e.lastEventId }));
    }
  }, token);

  const events = () => page.evaluate(() => window.sse.events);
  const waitEvent = (name, data, timeout = 5000 * scale) => page.waitForFunction(
    ([n, d]) => window.sse.events.some((e) => e.name === n && (d === null || e.data === d)),
    [name, data], { timeout });

  let session;
  await check('EventSource opens the stream and gets op 8 with the session id', async () => {
    await waitEvent('8', null, 8000 * scale);
    const auth = JSON.parse((await events()).find((e) => e.name === '8').data);
    if (auth.key !== 'sse-4301' || !/^[A-Za-z0-9_-]{22}\.sse-4301$/.test(auth.session)) {
      throw new Error(JSON.stringify(auth));
    }
    session = auth.session;
  });

  await check('a mid push arrives as event 1000, its lines and UTF-8 intact', async () => {
    await push('mids?operation=1000&mids=4301', 'hello\nSSE ✓');
    await waitEvent('1000', 'hello\nSSE ✓');
  });

  await check('a binary push arrives as event 1000.b64', async () => {
    await push('mids?operation=1000&mids=4301', new Uint8Array([0, 255, 1, 2]));
    await waitEvent('1000.b64', null);
    const e = (await events()).find((x) => x.name === '1000.b64');
    const bytes = await page.evaluate((d) => Array.from(atob(d), (c) => c.charCodeAt(0)), e.data);
    if (bytes.join(',') !== '0,255,1,2') throw new Error(bytes.join(','));
  });

  await check('a control call from the page (fetch, op 14) subscribes 1001: op 15 on the stream, then its pushes', async () => {
    const r = await page.evaluate(async (sid) => {
      const res = await fetch(`/sse/control?session=${encodeURIComponent(sid)}&op=14`,
                              { method: 'POST', body: '1001' });
      return `${res.status} ${await res.text()}`;
    }, session);
    if (!r.startsWith('202 {"code":0')) throw new Error(r);
    await waitEvent('15', '1001');
    await push('mids?operation=1001&mids=4301', 'subscribed');
    await waitEvent('1001', 'subscribed');
  });

  await check('room messages carry their position as the event id', async () => {
    await push('room?operation=1000&type=live&room=4301', 'room before');
    await waitEvent('1000', 'room before');
    const e = (await events()).find((x) => x.data === 'room before');
    if (!/^\d+:\d+\/$/.test(e.id)) throw new Error(`id ${e.id}`);
  });

  await check('after nginx -s reload closes the stream, EventSource comes back with Last-Event-ID and gets what it missed', async () => {
    const before = await page.evaluate(() => window.sse.errors);
    const moved = async () => {
      const h = (await (await api('/status')).json()).handoff;
      return h.sessions_adopted + h.sessions_closed;
    };
    const was = await moved();
    execSync(process.env.RELOAD, { stdio: 'ignore' });
    await page.waitForFunction((n) => window.sse.errors > n, before, { timeout: 10000 * scale });
    // job's push connection is the new workers' once they adopted it (or
    // it came back to them): from then on their history keeps the pushes
    const deadline = Date.now() + 10000 * scale;
    while (await moved() <= was) {
      if (Date.now() > deadline) throw new Error('job\'s push connection did not move to the new workers');
      await new Promise((r) => setTimeout(r, 50));
    }
    // pushed while the page is away
    await push('room?operation=1000&type=live&room=4301', 'while away');
    await page.waitForFunction(() => window.sse.opens >= 2, null, { timeout: 15000 * scale });
    await waitEvent('1000', 'while away', 10000 * scale);
    const r = (await events()).filter((e) => e.name === '21').map((e) => JSON.parse(e.data));
    const room = r.filter((x) => x.stream === 'room').pop();
    if (!room || !room.recovered || room.missed !== 1) throw new Error(`op 21 ${JSON.stringify(r)}`);
    const n = (await events()).filter((e) => e.data === 'while away').length;
    if (n !== 1) throw new Error(`"while away" came ${n} times`);
  });

  await check('the status page counts the SSE connection', async () => {
    const st = await (await api('/status')).json();
    if (st.sse.connections !== 1) throw new Error(JSON.stringify(st.sse));
  });

  report(errors.length === 0, 'no page errors in the SSE run', errors.join('; '));
} catch (e) {
  report(false, 'SSE browser run', e.message);
} finally {
  await browser.close();
}
process.exit(failures() ? 1 : 0);
