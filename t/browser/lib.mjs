// What t/browser's scripts share: their results, one per line on stdout
// ("ok <name>" or "not ok <name>: <detail>", read by t/070-browser.t), the
// API calls, and Debian's headless chromium through playwright-core, let
// reach nothing but our server.  Environment: BASE (http://127.0.0.1:PORT),
// OUT (a directory for screenshots and the browser profile), CHROMIUM
// (default /usr/bin/chromium), GOIM_TIME_SCALE.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const base = process.env.BASE;
export const out = process.env.OUT;
// deadlines, not delays: slow runs stretch them (t/lib/Goim/Time.pm's scale)
export const scale = Number(process.env.GOIM_TIME_SCALE || 1);
let failed = 0;

export function failures() { return failed; }

export function report(ok, name, detail = '') {
  if (!ok) failed++;
  console.log(`${ok ? 'ok' : 'not ok'} ${name}${!ok && detail ? ': ' + detail : ''}`);
}

export async function check(name, fn) {
  try { await fn(); report(true, name); } catch (e) { report(false, name, String(e.message).split('\n')[0] + (e.cause ? ` (${e.cause})` : '')); }
}

// This script's own HTTP calls (pushes, /status, receipts), each on a
// connection of its own.  A kept-alive one would be reused after the
// reload below, and nginx's old workers close their idle keep-alive
// connections when they get QUIT: a request written on one as it closes
// fails with "fetch failed" (SocketError: other side closed), which is how
// the reload check failed about once in 40 reloads.
export function api(path, init = {}) {
  return fetch(`${base}${path}`, { ...init, headers: { connection: 'close', ...init.headers } });
}

export async function push(path, body) {
  const r = await api(`/goim/push/${path}`, { method: 'POST', body });
  const t = await r.text();
  if (r.status !== 200) throw new Error(`push ${path}: ${r.status} ${t}`);
}

export async function launch() {
  const profile = mkdtempSync(join(out, 'profile-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-extensions', '--disable-default-apps', '--no-default-browser-check',
           '--metrics-recording-only', '--disable-features=Translate,OptimizationHints,MediaRouter'],
  });
  // nothing but our server: any other request is refused
  const ws = base.replace(/^http/, 'ws');
  await ctx.route(/.*/, (route) => {
    const u = route.request().url();
    if (u.startsWith(base) || u.startsWith(ws)) route.continue();
    else route.abort();
  });
  return {
    ctx,
    async close() {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
