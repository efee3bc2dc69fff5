// play.mjs drives Debian's Chromium (headless, through playwright-core) over Reel's demo page
// for the browser tests (cmd/reel/browser_test.go), and prints what the page showed as JSON.
//
//   node edge/ui/e2e/play.mjs config.json
//
// config.json:
//   { "chromium": "/usr/bin/chromium", "base": "http://127.0.0.1:8681",
//     "cases": [ { "name": "VOD HLS", "path": "/_reel/?p=vod&f=hls", "play": 5.5, "timeout": 30,
//                  "screenshot": "player.png" }, … ],
//     "status": { "path": "/_reel/status", "screenshot": "status.png" } }   (optional)
//
// Each case opens the page, waits until the player has played `play` seconds of media (or
// reports an error, or `timeout` passes) and records the player's state: time played, frames
// decoded, rendition, buffer, latency samples, errors, and the page's console errors. The
// status step waits for two refreshes and records the figures the panel shows. Logs go to
// stderr; the result is the one line on stdout.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (...a) => console.error('[play]', ...a);
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-chromium-'));
const out = { cases: [], status: null, browser: '' };
const t0 = Date.now();
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: cfg.chromium, headless: true, args,
    viewport: { width: 1400, height: 860 }, deviceScaleFactor: 1, timeout: 60_000,
  });
  out.browser = context.browser() ? context.browser().version() : '';
  log('chromium started in', Date.now() - t0, 'ms');
  for (const c of cfg.cases || []) out.cases.push(await playCase(c));
  if (cfg.status) out.status = await statusPage(cfg.status);
} catch (e) {
  out.fatal = String(e && e.stack || e);
  log('fatal:', out.fatal);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
out.seconds = (Date.now() - t0) / 1000;
process.stdout.write(JSON.stringify(out) + '\n');

async function openPage(path) {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));
  await page.goto(cfg.base + path, { waitUntil: 'load', timeout: 20_000 });
  return { page, consoleErrors };
}

async function playCase(c) {
  const started = Date.now();
  const { page, consoleErrors } = await openPage(c.path);
  const deadline = started + (c.timeout || 30) * 1000;
  let s = null;
  for (;;) {
    s = await page.evaluate(() => {
      const p = window.reel && window.reel.player;
      return p ? JSON.parse(JSON.stringify(p)) : null;
    });
    if (s && (s.errors.length || s.played >= c.play)) break;
    if (Date.now() > deadline) break;
    await page.waitForTimeout(250);
  }
  if (c.screenshot) await page.screenshot({ path: c.screenshot });
  await page.close();
  const r = { name: c.name, path: c.path, seconds: (Date.now() - started) / 1000, player: s, consoleErrors };
  log(c.name + ':', s ? `played ${s.played.toFixed(1)} s, ${s.frames} frames, ${s.errors.length} errors, latency ${s.latency == null ? '-' : s.latency.toFixed(2) + ' s'}` : 'no player', `(${r.seconds.toFixed(1)} s)`);
  return r;
}

async function statusPage(c) {
  const { page, consoleErrors } = await openPage(c.path);
  // What the first refresh said (a fresh edge once made it "statistics unavailable").
  await page.waitForFunction(() => document.getElementById('s-updated').textContent !== '', null, { timeout: 15_000 });
  const firstUpdated = await page.evaluate(() => document.getElementById('s-updated').textContent);
  // Two refreshes at least, so that the charts have a point and the figures are this second's.
  await page.waitForFunction(() => window.reel && window.reel.status && (window.reel.status.history || []).length >= 2, null, { timeout: 15_000 });
  await page.waitForTimeout(300); // let the refresh that just arrived paint
  const shown = await page.evaluate(() => {
    const text = (id) => (document.getElementById(id) || {}).textContent ?? null;
    const val = (id) => document.getElementById(id).dataset.value;
    const panel = document.getElementById('status-panel').dataset;
    return {
      hitRatio: text('s-hit-ratio'), hitRatioValue: val('s-hit-ratio'),
      byteHitRatio: text('s-byte-hit-ratio'), byteHitRatioValue: val('s-byte-hit-ratio'),
      offload: text('s-offload'), offloadValue: val('s-offload'),
      memory: text('s-memory'), memorySub: text('s-memory-sub'), disk: text('s-disk'),
      originPulled: text('s-origin-bytes'), originPulledSub: text('s-origin-bytes-sub'), updated: text('s-updated'),
      requests: Number(panel.requests), hits: Number(panel.hits),
      cacheBytes: Number(panel.cacheBytes), originBytes: Number(panel.originBytes),
      originRequests: Number(panel.originRequests),
      top: [...document.querySelectorAll('#s-top tbody td.path')].map((td) => td.textContent),
      counters: window.reel.status.counters,
    };
  });
  if (c.screenshot) await page.screenshot({ path: c.screenshot, fullPage: true });
  await page.close();
  log('status page:', `hit ratio ${shown.hitRatio}, byte hit ratio ${shown.byteHitRatio}, offload ${shown.offload}`);
  return { ...shown, firstUpdated, consoleErrors };
}
