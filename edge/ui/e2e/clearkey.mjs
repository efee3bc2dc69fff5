// clearkey.mjs drives Debian's Chromium (headless, through playwright-core) to play a
// cenc- or cbcs-encrypted DASH presentation with dash.js and ClearKey, or its HLS rendering
// with hls.js, for TestBrowserClearKey (cmd/reel/browser_clearkey_test.go), and prints what
// the player did as JSON.
//
//   node edge/ui/e2e/clearkey.mjs config.json
//
// config.json:
//   { "chromium": "/usr/bin/chromium", "base": "http://127.0.0.1:8681", "mpd": "/manifest.mpd",
//     "dashjs": "/abs/node_modules/dashjs/dist/modern/umd/dash.all.min.js",
//     "cases": [ { "name": "right key", "clearkeys": { "<kid base64url>": "<key base64url>" },
//                  "play": 2.5, "timeout": 15 }, … ] }
//
// With "hlsjs": "/abs/node_modules/hls.js/dist/hls.min.js" and "master": "/master.m3u8" it plays
// the master playlist with hls.js instead. hls.js finds the key IDs in the playlists' ClearKey
// EXT-X-KEY (KEYFORMAT="org.w3.clearkey", the KID as a data URI) and asks a license server for
// the keys: this driver answers at base + "/_clearkey/license" (by interception) with the
// case's clearkeys as a JSON Web Key set (with "licenseAsked": true, only those of the KIDs the
// request names, as a ClearKey license server would). A case with "player": "hls.js" and
// "url": "/path/master.m3u8" plays with hls.js in a run that has dash.js too.
//
// A live case (a dynamic MPD with key rotation: a Period per key period) gives every key
// period's key in clearkeys and "advance": N instead of "play": it waits until the video has
// played N seconds past where it started (live playback starts near the live edge, not at 0),
// and also reports where it started, the Periods dash.js switched to (hls.js: the init
// segments it went through) and the key sessions (hls.js: keys loaded) it opened.
//
// The page is a bare <video> served, by request interception, at base + "/_clearkey/": the
// same origin as the edge (no CORS in the way) and a secure context (127.0.0.1), which EME
// requires. Each case waits until the video has played `play` seconds, or the player reports
// an error, or `timeout` passes, and records currentTime, frames decoded and the errors.
// It also reports what requestMediaKeySystemAccess says for ClearKey with cenc and cbcs.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (...a) => console.error('[clearkey]', ...a);
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const pageURL = cfg.base + '/_clearkey/';
const pageHTML = '<!doctype html><meta charset="utf-8"><title>ClearKey</title>' +
  '<video id="v" muted playsinline width="640" height="360"></video>';
const dashjs = cfg.dashjs ? readFileSync(cfg.dashjs, 'utf8') : '';
const hlsjs = cfg.hlsjs ? readFileSync(cfg.hlsjs, 'utf8') : '';
const licenseURL = cfg.base + '/_clearkey/license';
let licenseKeys = {}; // the playing case's clearkeys
let licenseRequests = 0;
let licenseAsked = false; // the playing case's "licenseAsked"
const userDataDir = mkdtempSync(join(tmpdir(), 'reel-chromium-'));
const out = { cases: [], keySystems: {}, browser: '' };
const t0 = Date.now();
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: cfg.chromium, headless: true, args, timeout: 60_000,
  });
  out.browser = context.browser() ? context.browser().version() : '';
  await context.route(pageURL, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: pageHTML }));
  await context.route(licenseURL, (route) => {
    licenseRequests++;
    // Every key of the case; with "licenseAsked", only those of the KIDs the request names
    // ({"kids": [...]}), so each new KID needs a license request of its own.
    let wanted = Object.keys(licenseKeys);
    if (licenseAsked) {
      try { wanted = (JSON.parse(route.request().postData() || '{}').kids || []).filter((kid) => licenseKeys[kid]); } catch (e) { wanted = []; }
    }
    const keys = wanted.map((kid) => ({ kty: 'oct', kid, k: licenseKeys[kid] }));
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ keys, type: 'temporary' }) });
  });
  log('chromium started in', Date.now() - t0, 'ms');
  out.keySystems = await keySystems();
  for (const c of cfg.cases || []) out.cases.push(await playCase(c));
} catch (e) {
  out.fatal = String(e && e.stack || e);
  log('fatal:', out.fatal);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
out.seconds = (Date.now() - t0) / 1000;
process.stdout.write(JSON.stringify(out) + '\n');

// keySystems asks Chromium whether ClearKey takes cenc and cbcs for the ladder's H.264.
async function keySystems() {
  const page = await context.newPage();
  await page.goto(pageURL, { waitUntil: 'load', timeout: 20_000 });
  const r = await page.evaluate(async () => {
    const ask = async (scheme) => {
      try {
        const a = await navigator.requestMediaKeySystemAccess('org.w3.clearkey', [{ initDataTypes: ['cenc'],
          videoCapabilities: [{ contentType: 'video/mp4; codecs="avc1.64001e"', encryptionScheme: scheme }] }]);
        const got = a.getConfiguration().videoCapabilities[0];
        return { supported: true, encryptionScheme: got.encryptionScheme ?? null };
      } catch (e) {
        return { supported: false, error: String(e) };
      }
    };
    return { cenc: await ask('cenc'), cbcs: await ask('cbcs'), secureContext: window.isSecureContext };
  });
  await page.close();
  log('key systems:', JSON.stringify(r));
  return r;
}

async function playCase(c) {
  const started = Date.now();
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));
  await page.goto(pageURL, { waitUntil: 'load', timeout: 20_000 });
  licenseKeys = c.clearkeys;
  licenseRequests = 0;
  licenseAsked = !!c.licenseAsked;
  if (c.player === 'hls.js' || (hlsjs && cfg.master)) {
    await page.addScriptTag({ content: hlsjs });
    await page.evaluate(({ master, license }) => {
      const v = document.getElementById('v');
      const st = window.ck = { errors: [], periods: [], sessions: 0, startTime: null };
      v.addEventListener('playing', () => { if (st.startTime === null) st.startTime = v.currentTime; });
      v.addEventListener('error', () => st.errors.push('video: ' + (v.error ? v.error.code + ' ' + v.error.message : 'error')));
      const h = new Hls({ emeEnabled: true, drmSystems: { 'org.w3.clearkey': { licenseUrl: license } } });
      h.on(Hls.Events.ERROR, (_, d) => {
        if (d.fatal || /KEY|DRM|LICENSE/.test(d.details)) st.errors.push('hls.js: ' + d.type + ' ' + d.details + (d.error ? ' ' + d.error.message : ''));
      });
      // A key loaded (one per key period when keys rotate), and the init segments played.
      h.on(Hls.Events.KEY_LOADED, () => { st.sessions++; });
      h.on(Hls.Events.FRAG_CHANGED, (_, d) => {
        const init = d.frag && d.frag.initSegment ? d.frag.initSegment.relurl : '?';
        if (st.periods[st.periods.length - 1] !== init) st.periods.push(init);
      });
      h.loadSource(master);
      h.attachMedia(v);
      v.play().catch(() => {});
    }, { master: cfg.base + (c.url || cfg.master), license: licenseURL });
  } else {
    await page.addScriptTag({ content: dashjs });
    await page.evaluate(({ mpd, clearkeys }) => {
      const v = document.getElementById('v');
      const st = window.ck = { errors: [], periods: [], sessions: 0, startTime: null };
      v.addEventListener('playing', () => { if (st.startTime === null) st.startTime = v.currentTime; });
      v.addEventListener('error', () => st.errors.push('video: ' + (v.error ? v.error.code + ' ' + v.error.message : 'error')));
      const p = dashjs.MediaPlayer().create();
      p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_NONE } });
      p.on(dashjs.MediaPlayer.events.ERROR, (e) => {
        const err = e.error || {};
        st.errors.push('dash.js: ' + (err.code ?? '') + ' ' + (err.message ?? JSON.stringify(e.error)));
      });
      for (const ev of ['KEY_ERROR', 'KEY_SESSION_UPDATED', 'KEY_STATUSES_CHANGED']) {
        const name = dashjs.Protection && dashjs.Protection.events && dashjs.Protection.events[ev];
        if (!name) continue;
        p.on(name, (e) => {
          if (e.error) st.errors.push('dash.js ' + ev + ': ' + (e.error.code ?? '') + ' ' + (e.error.message ?? ''));
        });
      }
      p.on(dashjs.MediaPlayer.events.PERIOD_SWITCH_COMPLETED, (e) => {
        st.periods.push(e.toStreamInfo ? e.toStreamInfo.id : '?');
      });
      // The UMD build's MediaPlayer.events lacks the protection events; their names are stable.
      p.on('public_keySessionCreated', (e) => { if (!e.error) st.sessions++; });
      p.setProtectionData({ 'org.w3.clearkey': { clearkeys } });
      p.initialize(v, mpd, true);
    }, { mpd: cfg.base + cfg.mpd, clearkeys: c.clearkeys });
  }
  const deadline = started + (c.timeout || 15) * 1000;
  let s = null;
  for (;;) {
    s = await page.evaluate(() => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality();
      return { currentTime: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
        errors: window.ck.errors.slice(), readyState: v.readyState, startTime: window.ck.startTime,
        periods: window.ck.periods.slice(), sessions: window.ck.sessions };
    });
    if (s.errors.length) break;
    if (c.advance ? s.startTime !== null && s.currentTime >= s.startTime + c.advance : s.currentTime >= c.play) break;
    if (Date.now() > deadline) break;
    await page.waitForTimeout(100);
  }
  await page.close();
  const r = { name: c.name, seconds: (Date.now() - started) / 1000, state: s, consoleErrors, licenseRequests };
  log(c.name + ':', `currentTime ${s.currentTime.toFixed(2)} s (started at ${s.startTime}), ${s.frames} frames,`,
    `periods ${JSON.stringify(s.periods)}, ${s.sessions} key sessions, ${licenseRequests} license requests,`,
    `errors ${JSON.stringify(s.errors)}`, `(${r.seconds.toFixed(1)} s)`);
  return r;
}
