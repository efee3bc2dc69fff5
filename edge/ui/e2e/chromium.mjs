// chromium.mjs is what the browser-test drivers (play.mjs, clearkey.mjs) share: Debian's
// Chromium launched headless through playwright-core with a fresh profile, the bare <video>
// page served by request interception, pages that collect their console errors, a bounded
// poll of the page's state, and the one JSON line on stdout each driver prints.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The flags of every run: no GPU, QUIC, first-run or background work to slow or vary it, and
// autoplay without a gesture (the players start muted video themselves).
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// barePage is a page with only a <video id="v">, for a player library added to it. Served at
// the edge's own origin, it needs no CORS, and 127.0.0.1 is a secure context, which EME needs.
export const barePage = (title) => '<!doctype html><meta charset="utf-8"><title>' + title + '</title>' +
  '<video id="v" muted playsinline width="640" height="360"></video>';

// config reads the driver's config file, named by its first argument.
export const config = () => JSON.parse(readFileSync(process.argv[2], 'utf8'));

// logger prints to stderr with the driver's tag; stdout is for the result only.
export const logger = (tag) => (...a) => console.error(`[${tag}]`, ...a);

// runChromium launches cfg.chromium, serves barePage(title) at each of the bare URLs, runs
// body(context, out), and then, whatever happened, closes the browser, removes the profile and
// prints out as one JSON line with the browser's version, the seconds it all took and, when
// something threw, fatal. launch adds options to playwright's (a viewport, say).
export async function runChromium({ cfg, tag, bare = [], title = tag, launch = {} }, out, body) {
  const log = logger(tag);
  const userDataDir = mkdtempSync(join(tmpdir(), 'reel-chromium-'));
  const t0 = Date.now();
  out.browser = '';
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: cfg.chromium, headless: true, args, timeout: 60_000, ...launch,
    });
    out.browser = context.browser() ? context.browser().version() : '';
    log('chromium', out.browser, 'started in', Date.now() - t0, 'ms');
    for (const url of bare) {
      await context.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: barePage(title) }));
    }
    await body(context);
  } catch (e) {
    out.fatal = String(e && e.stack || e);
    log('fatal:', out.fatal);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  out.seconds = (Date.now() - t0) / 1000;
  process.stdout.write(JSON.stringify(out) + '\n');
}

// openPage opens url in a new page that records its console errors and uncaught exceptions.
export async function openPage(context, url) {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));
  await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  return { page, consoleErrors };
}

// poll reads the page's state with read (run in the page) every `every` ms until done(state)
// or the deadline (a Date.now() value) passes, and returns the last state.
export async function poll(page, read, done, deadline, every = 100) {
  for (;;) {
    const s = await page.evaluate(read);
    if (done(s) || Date.now() > deadline) return s;
    await page.waitForTimeout(every);
  }
}
