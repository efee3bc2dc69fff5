// clearkey.mjs drives Debian's Chromium (headless, through playwright-core; the launch is
// chromium.mjs's) to play cenc- or cbcs-encrypted presentations with ClearKey — a DASH MPD
// with dash.js or Shaka Player, an HLS master playlist with hls.js or Shaka Player — for
// TestBrowserClearKey and TestBrowserLiveClearKey (cmd/reel/browser_*clearkey_test.go), and
// prints what each player did as JSON.
//
//   node edge/ui/e2e/clearkey.mjs config.json
//
// config.json:
//   { "chromium": "/usr/bin/chromium", "base": "http://127.0.0.1:8681", "mpd": "/manifest.mpd",
//     "dashjs": "/abs/…/dash.all.min.js", "hlsjs": "/abs/…/hls.min.js", "shaka": "/abs/…/shaka-player.compiled.js",
//     "cases": [ { "name": "right key", "player": "dash.js", "url": "/manifest.mpd",
//                  "clearkeys": { "<kid base64url>": "<key base64url>" }, "play": 2.5, "timeout": 15 }, … ] }
//
// "player" is dash.js (the default), hls.js or shaka; "url" defaults to "mpd" (or, with
// "master" in the config, to it, played with hls.js). dash.js is given the keys as its ClearKey
// protection data. hls.js and Shaka Player ask a license server, as real deployments do: hls.js
// on the KIDs of the playlists' ClearKey EXT-X-KEY and the init segments' pssh, Shaka on the
// MPD's or playlists' key IDs. This driver is that server, at base + "/_clearkey/license" (by
// interception): it answers with the case's clearkeys as a JSON Web Key set (with
// "licenseAsked": true, only those of the KIDs the request names, as a ClearKey license server
// would). Shaka Player's HLS parser (5.2.12) knows no KEYFORMAT="org.w3.clearkey" (error 4026):
// its HLS ClearKey is KEYFORMAT="identity", the key fetched from the tag's URI; the driver
// serves the case's one key, as 16 bytes, at base + "/_clearkey/key" (package with
// --key-uri /_clearkey/key).
//
// A live case (a dynamic MPD with key rotation: a Period per key period) gives every key
// period's key in clearkeys and "advance": N instead of "play": it waits until the video has
// played N seconds past where it started (live playback starts near the live edge, not at 0),
// and also reports where it started, the Periods dash.js switched to (hls.js: the init
// segments it went through) and the keys the player took (dash.js: key sessions; hls.js: keys
// loaded; Shaka: licenses received).
//
// Each case opens the bare page at base + "/_clearkey/" (chromium.mjs), waits until the video
// has played `play` seconds, or the player reports an error, or `timeout` passes, and records
// currentTime, frames decoded and the errors. First of all the driver asks
// requestMediaKeySystemAccess whether ClearKey takes cenc and cbcs, and reports the answers.
import { readFileSync } from 'node:fs';
import { config, logger, openPage, poll, runChromium } from './chromium.mjs';

const cfg = config();
const log = logger('clearkey');
const pageURL = cfg.base + '/_clearkey/';
const licenseURL = cfg.base + '/_clearkey/license';
const keyURL = cfg.base + '/_clearkey/key';
const libs = { 'dash.js': cfg.dashjs, 'hls.js': cfg.hlsjs, shaka: cfg.shaka };
let licenseKeys = {}; // the playing case's clearkeys
let licenseRequests = 0;
let keyRequests = 0;
let licenseAsked = false; // the playing case's "licenseAsked"
const out = { cases: [], keySystems: {} };
await runChromium({ cfg, tag: 'clearkey', bare: [pageURL], title: 'ClearKey' }, out, async (context) => {
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
  // Shaka Player's HLS ClearKey is KEYFORMAT="identity": the key itself, fetched from the
  // tag's URI (`reel package --key-uri`); this is that key server, for a case with one key.
  await context.route(keyURL, (route) => {
    keyRequests++;
    const keys = Object.values(licenseKeys);
    if (keys.length !== 1) return route.fulfill({ status: 404, body: 'one key per case here' });
    route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(keys[0], 'base64url') });
  });
  out.keySystems = await keySystems(context);
  for (const c of cfg.cases || []) out.cases.push(await playCase(context, c));
});

// keySystems asks Chromium whether ClearKey takes cenc and cbcs for the ladder's H.264, and
// which encryptionScheme the configuration it grants names.
async function keySystems(context) {
  const { page } = await openPage(context, pageURL);
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
  log('requestMediaKeySystemAccess(org.w3.clearkey):', JSON.stringify(r));
  return r;
}

async function playCase(context, c) {
  const started = Date.now();
  const { page, consoleErrors } = await openPage(context, pageURL);
  licenseKeys = c.clearkeys;
  licenseRequests = 0;
  keyRequests = 0;
  licenseAsked = !!c.licenseAsked;
  const player = c.player || (cfg.master ? 'hls.js' : 'dash.js');
  if (!libs[player]) throw new Error('no library file for player ' + player);
  await page.addScriptTag({ content: readFileSync(libs[player], 'utf8') });
  const url = cfg.base + (c.url || (player === 'hls.js' ? cfg.master : cfg.mpd));
  await page.evaluate(startPlayer, { player, url, license: licenseURL, clearkeys: c.clearkeys });
  const s = await poll(page, () => {
    const v = document.getElementById('v');
    const q = v.getVideoPlaybackQuality();
    return { currentTime: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
      errors: window.ck.errors.slice(), readyState: v.readyState, startTime: window.ck.startTime,
      periods: window.ck.periods.slice(), sessions: window.ck.sessions, library: window.ck.library };
  }, (s) => s.errors.length > 0 ||
    (c.advance ? s.startTime !== null && s.currentTime >= s.startTime + c.advance : s.currentTime >= c.play),
  started + (c.timeout || 15) * 1000);
  await page.close();
  const r = { name: c.name, player, seconds: (Date.now() - started) / 1000, state: s, consoleErrors, licenseRequests, keyRequests };
  log(c.name + ':', `${s.library}: currentTime ${s.currentTime.toFixed(2)} s (started at ${s.startTime}), ${s.frames} frames,`,
    `periods ${JSON.stringify(s.periods)}, ${s.sessions} keys, ${licenseRequests} license requests, ${keyRequests} key requests,`,
    `errors ${JSON.stringify(s.errors)}`, `(${r.seconds.toFixed(1)} s)`);
  return r;
}

// startPlayer runs in the page: it starts the player on url with ClearKey and keeps window.ck
// up to date (see the top of this file for what each player counts).
function startPlayer({ player, url, license, clearkeys }) {
  const v = document.getElementById('v');
  const st = window.ck = { errors: [], periods: [], sessions: 0, startTime: null, library: player };
  v.addEventListener('playing', () => { if (st.startTime === null) st.startTime = v.currentTime; });
  v.addEventListener('error', () => st.errors.push('video: ' + (v.error ? v.error.code + ' ' + v.error.message : 'error')));
  if (player === 'hls.js') {
    st.library = 'hls.js ' + Hls.version;
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
    h.loadSource(url);
    h.attachMedia(v);
    v.play().catch(() => {});
  } else if (player === 'shaka') {
    shaka.polyfill.installAll();
    st.library = 'Shaka Player ' + shaka.Player.version;
    const p = new shaka.Player();
    const describe = (e) => 'Shaka Player: ' + e.code + (e.data && e.data.length ? ' ' + JSON.stringify(e.data).slice(0, 300) : '');
    p.addEventListener('error', (ev) => { if (ev.detail.severity === shaka.util.Error.Severity.CRITICAL) st.errors.push(describe(ev.detail)); });
    // A license received: one per key period when keys rotate.
    p.addEventListener('drmsessionupdate', () => { st.sessions++; });
    p.configure({ drm: { servers: { 'org.w3.clearkey': license } } });
    // Shaka doesn't start playback itself: play once loaded.
    p.attach(v).then(() => p.load(url)).then(() => v.play()).catch((e) => st.errors.push(e && e.code != null ? describe(e) : 'Shaka Player: ' + e));
  } else {
    const p = dashjs.MediaPlayer().create();
    st.library = 'dash.js ' + p.getVersion();
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
    p.initialize(v, url, true);
  }
}
