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
// A case may instead name a manifest URL and a player library, to play it without the demo
// page (the tokened URLs of cmd/reel/browser_token_test.go, say):
//   { "name": "Shaka DASH", "url": "/manifest.mpd?token=…", "player": "shaka", "play": 3 }
// and, with "text": { "lang": "fr", "at": 6.5, "cue": "Reel découpe", "timeout": 20 }, once
// played, check subtitles (cmd/reel/browser_subtitles_test.go): the text tracks the player's
// API lists (language, label) go in the result's "text.tracks"; the one in lang is enabled
// through that API, the video sought to `at` and, playing on, sought back there whenever it
// leaves [at - 0.5, at + 1.2] (players fetch text as they play, not all of them while paused),
// and the cues active on the video's non-disabled text tracks (video.textTracks, where all
// three players put them) are polled until one holds `cue` or the timeout passes ("text.cues"
// is the last reading, with every text track's mode and first cues in "all"). For a live
// stream, "live": { "start": <ms since the epoch of media time 0>, "loop": 12 } makes `at` a
// time within a loop of that many seconds: the check seeks to the latest such time a second or
// more behind the playhead, found from the date the player gives the playhead (hls.js
// playingDate, dash.js timeAsUTC, Shaka getPlayheadTimeAsDate); "text.at" is where it went;
// with the libraries' files given once, as absolute paths:
//   "libs": { "hls.js": ".../hls.min.js", "dash.js": ".../dash.all.min.js", "shaka": ".../shaka-player.compiled.js" }
// A case may add "mark": { "after": 4, "file": "/tmp/…/marked", "then": 12 } to let its test
// act while the player plays (cmd/reel/live_redundant_test.go kills an origin): once the
// player has played `after` seconds past where it started (a live player starts anywhere on
// the timeline), its state is written to `file`, once, and the case ends when it has played
// `then` seconds past that point (or on an error, or at `timeout`); "markedAt" in the result
// is the position it was marked at.
// A Shaka Player case may add "configure": { … }, Shaka's configuration, given to
// player.configure before the load (browser_subtitles_test.go says why one does).
// The page is then a bare <video> served, by request interception, at base + "/_play/": the
// edge's own origin, so no CORS is in the way. The library plays the URL as it is given — no
// request of the player is changed — and the state reported is the demo page's fields that
// apply: played, frames, errors, warnings, library.
//
// Each case opens the page, waits until the player has played `play` seconds of media (or
// reports an error, or `timeout` passes) and records the player's state: time played, frames
// decoded, rendition, buffer, latency samples, errors, and the page's console errors. The
// status step waits for two refreshes and records the figures the panel shows. Logs go to
// stderr; the result is the one line on stdout. The launch, the bare page and the polling are
// chromium.mjs's, shared with clearkey.mjs.
import { readFileSync, writeFileSync } from 'node:fs';
import { config, logger, openPage as open, poll, runChromium } from './chromium.mjs';

const cfg = config();
const log = logger('play');
const out = { cases: [], status: null };
let context;
await runChromium({ cfg, tag: 'play', bare: [cfg.base + '/_play/'], launch: { viewport: { width: 1400, height: 860 }, deviceScaleFactor: 1 } }, out, async (ctx) => {
  context = ctx;
  for (const c of cfg.cases || []) out.cases.push(c.url ? await playURL(c) : await playCase(c));
  if (cfg.status) out.status = await statusPage(cfg.status);
});

// openPage opens base + path (declared, not assigned: the run above calls it).
function openPage(path) { return open(context, cfg.base + path); }

async function playCase(c) {
  const started = Date.now();
  const { page, consoleErrors } = await openPage(c.path);
  const s = await poll(page, () => {
    const p = window.reel && window.reel.player;
    return p ? JSON.parse(JSON.stringify(p)) : null;
  }, (s) => s && (s.errors.length || s.played >= c.play), started + (c.timeout || 30) * 1000, 250);
  if (c.screenshot) await page.screenshot({ path: c.screenshot });
  await page.close();
  const r = { name: c.name, path: c.path, seconds: (Date.now() - started) / 1000, player: s, consoleErrors };
  log(c.name + ':', s ? `played ${s.played.toFixed(1)} s, ${s.frames} frames, ${s.errors.length} errors, latency ${s.latency == null ? '-' : s.latency.toFixed(2) + ' s'}` : 'no player', `(${r.seconds.toFixed(1)} s)`);
  return r;
}

// playURL plays c.url with c.player on the bare page (see the top of this file).
async function playURL(c) {
  const started = Date.now();
  const { page, consoleErrors } = await openPage('/_play/');
  const lib = cfg.libs && cfg.libs[c.player];
  if (!lib) throw new Error('no library file for player ' + c.player);
  await page.addScriptTag({ content: readFileSync(lib, 'utf8') });
  await page.evaluate(startPlayer, { player: c.player, url: cfg.base + c.url, configure: c.configure });
  let from = null, markedAt = null; // c.mark (see the top of this file)
  const done = (s) => {
    if (s.errors.length) return true;
    if (!c.mark) return s.played >= c.play;
    if (from == null && s.frames > 0 && s.played > 0) from = s.played;
    if (markedAt == null && from != null && s.played >= from + c.mark.after) {
      markedAt = s.played;
      writeFileSync(c.mark.file, JSON.stringify(s));
      log(c.name + ':', 'marked at', markedAt.toFixed(1));
    }
    return markedAt != null && s.played >= markedAt + c.mark.then;
  };
  const s = await poll(page, () => JSON.parse(JSON.stringify(window.reel.player)), done, started + (c.timeout || 30) * 1000, 250);
  let text;
  if (c.text && !s.errors.length) text = await checkText(page, c.text);
  await page.close();
  const r = { name: c.name, path: c.url, seconds: (Date.now() - started) / 1000, player: s, consoleErrors, text, markedAt };
  log(c.name + ':', `${s.library}: played ${s.played.toFixed(1)} s, ${s.frames} frames, ${s.errors.length} errors`, `(${r.seconds.toFixed(1)} s)`);
  if (text) log(c.name + ':', 'text tracks', JSON.stringify(text.tracks), 'at', text.cues.time, 'cues', JSON.stringify(text.cues.cues), 'tracks', JSON.stringify(text.cues.all),
    text.cues.frags && text.cues.frags.length ? 'subtitle fragments ' + text.cues.frags.join(', ') : '');
  return r;
}

// checkText lists the player's text tracks, enables the one in t.lang, seeks to t.at and
// polls the active cues (see the top of this file).
async function checkText(page, t) {
  const deadline = Date.now() + (t.timeout || 20) * 1000;
  const tracks = await page.evaluate(() => {
    const r = window.reel;
    if (r.kind === 'hls.js') return r.lib.subtitleTracks.map((x) => ({ lang: x.lang, label: x.name }));
    if (r.kind === 'dash.js') return r.lib.getTracksFor('text').map((x) => ({ lang: x.lang, label: (x.labels && x.labels[0] && (x.labels[0].text || x.labels[0].__text)) || '' }));
    return r.lib.getTextTracks().map((x) => ({ lang: x.language, label: x.label }));
  });
  let at = t.at;
  if (t.live) at = await page.evaluate(liveTextTime, { at: t.at, live: t.live });
  if (at == null) return { tracks, enabled: false, cues: { time: null, cues: [], all: [] }, at };
  const enabled = await page.evaluate(({ lang, at }) => {
    const r = window.reel;
    const video = document.getElementById('v');
    let ok = false;
    if (r.kind === 'hls.js') {
      const i = r.lib.subtitleTracks.findIndex((x) => x.lang === lang);
      r.lib.subtitleDisplay = true;
      r.lib.subtitleTrack = i;
      ok = i >= 0;
    } else if (r.kind === 'dash.js') {
      const x = r.lib.getTracksFor('text').find((x) => x.lang === lang);
      r.lib.enableText(true);
      if (x) r.lib.setCurrentTrack(x);
      ok = !!x;
    } else {
      const x = r.lib.getTextTracks().find((x) => x.language === lang);
      if (x) r.lib.selectTextTrack(x); // Shaka Player 5 shows the track it selects
      if (typeof r.lib.setTextTrackVisibility === 'function') r.lib.setTextTrackVisibility(true); // Shaka 4
      ok = !!x;
    }
    video.currentTime = at;
    return ok;
  }, { lang: t.lang, at });
  await page.evaluate((at) => { window.reel.textAt = at; }, at);
  // Polled until the cue is active *at* `at`, which is what the tests check: the other half of
  // a cue split at a segment boundary, active while the playhead drifts on before the seek
  // back, has the same text but is not the one.
  const cues = await poll(page, () => {
    const video = document.getElementById('v');
    // Playing on, the cue's window passes: back to `at`.
    if (video.currentTime > window.reel.textAt + 1.2 || video.currentTime < window.reel.textAt - 0.5) video.currentTime = window.reel.textAt;
    const out = [];
    const all = [];
    // dash.js puts a TTML (stpp) cue in video.textTracks with empty text, its content in the
    // imsc.js document it renders (cue.isd): the text of its spans, "\n" for a <br/>.
    const isdText = (n) => (!n || typeof n !== 'object' ? '' : (n.kind === 'br' ? '\n' : '') + (typeof n.text === 'string' ? n.text : '') + (n.contents || []).map(isdText).join(''));
    for (const tt of video.textTracks) {
      all.push({ label: tt.label, lang: tt.language, mode: tt.mode, cues: tt.cues ? tt.cues.length : null,
        first: tt.cues ? [...tt.cues].slice(0, 4).map((c) => [c.startTime, c.endTime, c.text.slice(0, 12)]) : [] });
      if (tt.mode === 'disabled') continue;
      for (const c of tt.activeCues || []) out.push({ track: tt.label, lang: tt.language, mode: tt.mode, start: c.startTime, end: c.endTime, text: c.text || isdText(c.isd) });
    }
    const frags = (window.reel.player.events || []).filter((l) => l.includes(' subtitle '));
    return { time: video.currentTime, cues: out, all, frags };
  }, (s) => s.cues.some((c) => c.text.includes(t.cue) && c.start <= at && c.end >= at), deadline, 200);
  return { tracks, enabled, cues, at };
}

// liveTextTime runs in the page: the player time of the latest instant at least a second
// behind the playhead whose date is live.start + at, modulo live.loop seconds (see the top of
// this file); null when the player gives no date.
function liveTextTime({ at, live }) {
  const r = window.reel;
  const video = document.getElementById('v');
  let date = null;
  if (r.kind === 'hls.js') date = r.lib.playingDate ? r.lib.playingDate.getTime() / 1000 : null;
  else if (r.kind === 'dash.js') date = r.lib.timeAsUTC();
  else { const d = r.lib.getPlayheadTimeAsDate(); date = d ? d.getTime() / 1000 : null; }
  if (!date) return null;
  const start = live.start / 1000;
  const k = Math.floor((date - 1 - start - at) / live.loop);
  return video.currentTime + (start + k * live.loop + at - date);
}

// startPlayer runs in the page: it starts the library on the URL and keeps window.reel.player
// up to date. Fatal errors are errors, others warnings. configure is Shaka Player's
// configuration, if any.
function startPlayer({ player, url, configure }) {
  const video = document.getElementById('v');
  const s = { library: player, played: 0, frames: 0, errors: [], warnings: [], format: player };
  window.reel = { player: s };
  const fail = (msg) => { if (!s.errors.includes(msg)) s.errors.push(msg); };
  const warn = (msg) => { if (s.warnings.length < 50) s.warnings.push(msg); };
  // What the player loaded and what the video element did, in order, for the reports of
  // checks that fail (the last 600): fragments and parts of every type, playlist and manifest
  // updates, stalls and seeks, each with the time since the start and the playhead.
  s.events = [];
  const t0 = Date.now();
  const ev = (line) => { s.events.push(((Date.now() - t0) / 1000).toFixed(2) + ' ' + line); if (s.events.length > 600) s.events.shift(); };
  const at = () => ' playhead ' + video.currentTime.toFixed(2);
  const buffered = () => [...Array(video.buffered.length).keys()].map((i) => video.buffered.start(i).toFixed(2) + '-' + video.buffered.end(i).toFixed(2)).join(',');
  for (const type of ['waiting', 'stalled', 'seeking', 'seeked', 'playing', 'pause', 'ended', 'error']) {
    video.addEventListener(type, () => ev('video ' + type + at() + ' buffered ' + buffered()));
  }
  setInterval(() => {
    s.played = Math.max(s.played, video.currentTime);
    const q = video.getVideoPlaybackQuality && video.getVideoPlaybackQuality();
    s.frames = q ? q.totalVideoFrames : 0;
    if (video.error) fail('video element: ' + video.error.code + ' ' + video.error.message);
  }, 200);
  try {
    if (player === 'hls.js') {
      const hls = new window.Hls();
      Object.assign(window.reel, { kind: player, lib: hls });
      s.library = 'hls.js ' + window.Hls.version;
      hls.on(window.Hls.Events.ERROR, (_, d) => {
        const msg = 'hls.js ' + d.type + ': ' + d.details + (d.response && d.response.code ? ' (HTTP ' + d.response.code + ')' : '');
        if (d.fatal) fail(msg); else warn(msg);
      });
      const E = window.Hls.Events;
      const frag = (what) => (_, d) => {
        if (d.frag) ev(what + ' ' + d.frag.type + ' ' + d.frag.sn + (d.part ? '.' + d.part.index : '') + '@' + d.frag.start.toFixed(2) + (d.success === false ? ' failed' : '') + at());
      };
      hls.on(E.FRAG_LOADING, frag('load'));
      hls.on(E.FRAG_BUFFERED, frag('buffered'));
      hls.on(E.SUBTITLE_FRAG_PROCESSED, frag('done'));
      const list = (what) => (_, d) => {
        const x = d.details;
        if (x) ev(what + ' ' + x.startSN + '-' + x.endSN + ' last part ' + x.lastPartSn + '.' + x.lastPartIndex + (x.skippedSegments ? ' skipped ' + x.skippedSegments : '') + (x.updated ? '' : ' not updated') + (x.misses ? ' misses ' + x.misses : ''));
      };
      hls.on(E.LEVEL_UPDATED, list('video playlist'));
      hls.on(E.AUDIO_TRACK_LOADED, list('audio playlist'));
      hls.on(E.ERROR, (_, d) => ev('error ' + d.details + (d.frag ? ' ' + d.frag.type + ' ' + d.frag.sn : '')));
      hls.loadSource(url);
      hls.attachMedia(video);
      video.play().catch(() => {});
    } else if (player === 'dash.js') {
      const p = window.dashjs.MediaPlayer().create();
      Object.assign(window.reel, { kind: player, lib: p });
      s.library = 'dash.js ' + p.getVersion();
      p.on(window.dashjs.MediaPlayer.events.ERROR, (e) => {
        const err = e.error || {};
        fail('dash.js error ' + (err.code != null ? err.code + ': ' : '') + (err.message || String(err)));
      });
      const E = window.dashjs.MediaPlayer.events;
      p.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
        const r = e.request || {};
        ev('load ' + (r.mediaType === 'text' ? 'subtitle' : r.mediaType) + ' ' + r.index + '@' + (r.startTime || 0).toFixed(2) + (e.error ? ' failed' : '') + ' ' + String(r.url || '').split('/').slice(-2).join('/') + at());
      });
      p.on(E.MANIFEST_LOADED, () => ev('manifest loaded' + at()));
      for (const name of ['PLAYBACK_NOT_ALLOWED', 'PLAYBACK_STARTED', 'PLAYBACK_WAITING', 'BUFFER_EMPTY', 'STREAM_INITIALIZED']) {
        if (E[name]) p.on(E[name], (e) => ev(name.toLowerCase() + (e && e.mediaType ? ' ' + e.mediaType : '') + at()));
      }
      // Autoplay is dash.js's own: a play() of ours before it has attached un-pauses the video
      // with no 'play' event left for dash.js, whose live MPD refresh waits for that event — it
      // then plays what the first MPD listed and stalls.
      p.initialize(video, url, true);
      // dash.js renders TTML (stpp) cues itself, into this div; without one it adds none.
      const ttml = document.createElement('div');
      video.after(ttml);
      p.attachTTMLRenderingDiv(ttml);
    } else if (player === 'shaka') {
      const shaka = window.shaka;
      shaka.polyfill.installAll();
      if (!shaka.Player.isBrowserSupported()) throw new Error('Shaka Player does not support this browser');
      const p = new shaka.Player();
      if (configure) p.configure(configure);
      Object.assign(window.reel, { kind: player, lib: p });
      s.library = 'Shaka Player ' + shaka.Player.version;
      const describe = (e) => 'Shaka Player error ' + e.code + (e.data && e.data.length ? ' ' + JSON.stringify(e.data).slice(0, 300) : '');
      p.addEventListener('error', (x) => { const e = x.detail; if (e.severity === shaka.util.Error.Severity.CRITICAL) fail(describe(e)); else warn(describe(e)); });
      const T = shaka.net.NetworkingEngine.RequestType;
      const types = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k.toLowerCase()]));
      p.getNetworkingEngine().registerResponseFilter((type, r) => {
        const what = types[type] || String(type);
        const path = String(r.uri || '').split('?')[0].split('/').slice(-2).join('/');
        ev('load ' + (what === 'segment' && /(\.vtt|wvtt|text)/.test(path) ? 'subtitle' : what) + ' ' + path + at());
      });
      p.addEventListener('buffering', (x) => ev((x.buffering ? 'buffering' : 'buffered') + at()));
      p.addEventListener('textchanged', () => ev('text changed' + at()));
      // Shaka doesn't start playback itself: play once loaded.
      p.attach(video).then(() => p.load(url)).then(() => video.play()).catch((e) => fail(e && e.code != null ? describe(e) : 'Shaka Player: ' + e));
    } else {
      throw new Error('unknown player ' + player);
    }
  } catch (e) {
    fail('cannot start ' + player + ': ' + e.message);
  }
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
