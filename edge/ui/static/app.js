// Reel's demo page: a player (hls.js for HLS and LL-HLS, dash.js for DASH) and the edge's
// status panel. Plain JavaScript, no build step. window.reel exposes what the page shows, for
// the browser tests and for curious people with a console.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const statusOnly = /\/status\/?$/.test(location.pathname);
  const formatNames = { hls: 'HLS', llhls: 'LL-HLS', dash: 'DASH' };
  const state = (window.reel = { player: null, status: null, presentations: [] });

  // ---- formatting ----------------------------------------------------------------------
  const units = (n, base, names, digits = 1) => {
    if (n == null || !Number.isFinite(n)) return '—';
    let i = 0;
    while (Math.abs(n) >= base && i < names.length - 1) { n /= base; i++; }
    return (i === 0 ? Math.round(n) : n.toFixed(digits)) + ' ' + names[i];
  };
  const fmtBytes = (n) => units(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
  const fmtBits = (n) => units(n, 1000, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'], 2);
  const fmtPct = (v) => (v == null || !Number.isFinite(v) ? '—' : (v * 100).toFixed(1) + '%');
  const fmtNum = (n) => (n == null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
  const fmtRate = (n) => (n == null || !Number.isFinite(n) ? '—' : n < 10 ? n.toFixed(1) : fmtNum(n));
  const fmtSec = (s) => (s == null || !Number.isFinite(s) ? '—' : s.toFixed(1) + ' s');
  const setText = (id, text, value) => {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = value == null ? '' : String(value);
  };

  // ---- player --------------------------------------------------------------------------
  let engine = null; // the running player: { destroy(), rendition(), latency(), library }

  const formatsOf = (p) => {
    const f = [];
    if (p.hls) f.push('hls');
    if (p.hls && p.kind === 'live' && p.low_latency) f.push('llhls');
    if (p.dash) f.push('dash');
    return f;
  };

  function addError(msg) {
    const s = state.player;
    if (!s || s.errors.includes(msg)) return;
    s.errors.push(msg);
    const li = document.createElement('li');
    li.textContent = msg;
    $('p-errors').appendChild(li);
  }

  function addWarning(msg) {
    const s = state.player;
    if (s && s.warnings.length < 50) s.warnings.push(msg);
  }

  async function initPlayer() {
    let data;
    try {
      const r = await fetch('/_reel/api/presentations', { cache: 'no-store' });
      data = await r.json();
    } catch (e) {
      $('vendor-missing').hidden = false;
      $('vendor-missing').textContent = 'Cannot list presentations: ' + e.message;
      return;
    }
    state.presentations = data.presentations;
    if (!data.vendor) {
      $('vendor-missing').hidden = false;
      $('vendor-missing').textContent = 'No player: ' + data.hint + '.';
    }
    const sel = $('presentation');
    for (const kind of ['vod', 'live']) {
      const ps = data.presentations.filter((p) => p.kind === kind);
      if (!ps.length) continue;
      const group = document.createElement('optgroup');
      group.label = kind === 'vod' ? 'VOD' : 'Live';
      for (const p of ps) {
        const o = document.createElement('option');
        o.value = p.name;
        o.textContent = p.name + (kind === 'live' ? ' (live)' : '');
        group.appendChild(o);
      }
      sel.appendChild(group);
    }
    const q = new URLSearchParams(location.search);
    const first = data.presentations.find((p) => p.name === q.get('p')) || data.presentations[0];
    if (!first) {
      $('p-state').textContent = 'nothing to play';
      return;
    }
    sel.value = first.name;
    sel.addEventListener('change', () => {
      const p = data.presentations.find((x) => x.name === sel.value);
      const keep = state.player && formatsOf(p).includes(state.player.format) ? state.player.format : formatsOf(p)[0];
      play(p, keep);
    });
    const f = formatsOf(first).includes(q.get('f')) ? q.get('f') : formatsOf(first)[0];
    if (data.vendor) play(first, f);
    setInterval(tick, 250);
  }

  function play(p, format) {
    state.hls = state.dash = null;
    if (engine) {
      try { engine.destroy(); } catch (e) { /* a broken player is replaced anyway */ }
      engine = null;
    }
    state.player = {
      presentation: p.name, kind: p.kind, format, library: '', played: 0, lastTime: null,
      errors: [], warnings: [], latency: null, latencies: [], rendition: null, buffer: null,
      frames: 0, dropped: 0, state: 'loading', position: 0,
    };
    $('p-errors').replaceChildren();
    const q = new URLSearchParams(location.search);
    q.set('p', p.name);
    q.set('f', format);
    history.replaceState(null, '', location.pathname + '?' + q.toString());

    const box = $('formats');
    box.replaceChildren();
    for (const f of formatsOf(p)) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = formatNames[f];
      b.dataset.format = f;
      b.setAttribute('role', 'radio');
      b.setAttribute('aria-checked', String(f === format));
      b.addEventListener('click', () => f !== state.player.format && play(p, f));
      box.appendChild(b);
    }
    const url = format === 'dash' ? p.dash : p.hls;
    $('p-url').href = url;
    $('p-url').textContent = url;
    $('p-latency-box').hidden = p.kind !== 'live';
    try {
      engine = format === 'dash' ? startDash(url, p) : startHls(url, p, format === 'llhls');
      state.player.library = engine.library;
    } catch (e) {
      addError('cannot start the player: ' + e.message);
    }
  }

  function startHls(url, p, lowLatency) {
    const video = $('video');
    if (!window.Hls) throw new Error('hls.js did not load');
    if (!Hls.isSupported()) throw new Error('this browser has no Media Source Extensions');
    const hls = new Hls({ lowLatencyMode: lowLatency, backBufferLength: 30 });
    hls.on(Hls.Events.ERROR, (_, d) => {
      const code = d.response && d.response.code ? ' (HTTP ' + d.response.code + ')' : '';
      const msg = 'hls.js ' + d.type + ': ' + d.details + code;
      if (d.fatal) addError(msg); else addWarning(msg);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    state.hls = hls;
    video.play().catch(() => {});
    return {
      library: 'hls.js ' + Hls.version + (lowLatency ? ' (low-latency mode)' : ''),
      destroy() { hls.destroy(); },
      rendition() {
        const l = hls.levels && hls.levels[hls.currentLevel];
        return l ? { width: l.width, height: l.height, bitrate: l.bitrate, auto: hls.autoLevelEnabled } : null;
      },
      latency() {
        if (p.kind !== 'live') return null;
        const d = hls.playingDate;
        return d ? (Date.now() - d.getTime()) / 1000 : null;
      },
    };
  }

  function startDash(url, p) {
    const video = $('video');
    if (!window.dashjs) throw new Error('dash.js did not load');
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    const ev = dashjs.MediaPlayer.events;
    player.on(ev.ERROR, (e) => {
      const err = e.error || {};
      addError('dash.js error ' + (err.code != null ? err.code + ': ' : '') + (err.message || String(err)));
    });
    player.on(ev.PLAYBACK_ERROR, (e) => addError('dash.js playback error: ' + ((e.error && e.error.message) || 'unknown')));
    player.initialize(video, url, true);
    // dash.js renders IMSC1 (stpp) cues itself, into a div it is given; without one it shows none.
    let ttml = document.getElementById('ttml');
    if (!ttml) {
      ttml = document.createElement('div');
      ttml.id = 'ttml';
      video.after(ttml);
    }
    player.attachTTMLRenderingDiv(ttml);
    state.dash = player;
    return {
      library: 'dash.js ' + player.getVersion(),
      destroy() { player.reset(); },
      rendition() {
        let r = null;
        try { r = player.getCurrentRepresentationForType('video'); } catch (e) { return null; }
        return r ? { width: r.width, height: r.height, bitrate: r.bandwidth, auto: true } : null;
      },
      latency() {
        if (p.kind !== 'live') return null;
        try {
          const l = player.getCurrentLiveLatency();
          return Number.isFinite(l) && l > 0 ? l : null;
        } catch (e) { return null; }
      },
    };
  }

  function bufferAhead(v) {
    const t = v.currentTime;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= t + 0.1 && t <= v.buffered.end(i)) return v.buffered.end(i) - t;
    }
    return 0;
  }

  function tick() {
    const s = state.player;
    if (!s) return;
    const v = $('video');
    const t = v.currentTime;
    // Time actually played: the position's advance while playing (seeks and live jumps excluded).
    if (s.lastTime != null && !v.paused && t > s.lastTime && t - s.lastTime < 2) s.played += t - s.lastTime;
    s.lastTime = t;
    s.position = t;
    s.buffer = bufferAhead(v);
    if (v.getVideoPlaybackQuality) {
      const q = v.getVideoPlaybackQuality();
      s.frames = q.totalVideoFrames;
      s.dropped = q.droppedVideoFrames;
    }
    if (v.error) addError('video element error ' + v.error.code + ': ' + (v.error.message || ''));
    if (engine) {
      s.rendition = engine.rendition() || s.rendition;
      s.latency = engine.latency();
      if (s.latency != null && s.played > 1) {
        s.latencies.push(Math.round(s.latency * 1000) / 1000);
        if (s.latencies.length > 600) s.latencies.shift();
      }
    }
    s.state = v.error ? 'error' : v.ended ? 'ended' : v.paused ? 'paused' : v.readyState < 3 ? 'buffering' : 'playing';

    setText('p-library', s.library || '—');
    const r = s.rendition;
    setText('p-rendition', r ? r.height + 'p (' + r.width + '×' + r.height + ')' + (r.auto ? ', auto' : '') : '—');
    setText('p-bitrate', r ? fmtBits(r.bitrate) : '—', r ? r.bitrate : null);
    setText('p-buffer', fmtSec(s.buffer), s.buffer);
    setText('p-latency', s.latency == null ? '—' : fmtSec(s.latency) + ' behind live', s.latency);
    setText('p-position', fmtSec(t) + ' (played ' + fmtSec(s.played) + ')', s.played);
    setText('p-state', s.state + (s.errors.length ? ' — ' + s.errors.length + ' error(s)' : ''));
    setText('p-frames', fmtNum(s.dropped) + ' / ' + fmtNum(s.frames), s.frames);
  }

  // ---- status --------------------------------------------------------------------------
  let polling = false;

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const r = await fetch('/_reel/api/stats', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const d = await r.json();
      state.status = d;
      renderStatus(d);
    } catch (e) {
      $('s-updated').textContent = '— statistics unavailable (' + e.message + ')';
    } finally {
      polling = false;
    }
  }

  function renderStatus(d) {
    const c = d.counters;
    const t = d.totals;
    const h = d.history || []; // empty on a fresh edge (and null from an older one)
    const last = h.length ? h[h.length - 1] : null;
    const bytes = (c.response_bytes.cache || 0) + (c.response_bytes.origin || 0);
    $('s-updated').textContent = 'updated ' + new Date(c.time).toLocaleTimeString();
    $('status-panel').dataset.updated = c.time;

    setText('s-hit-ratio', fmtPct(t.hit_ratio), t.hit_ratio);
    setText('s-hits', fmtNum(t.hits) + ' hits of ' + fmtNum(t.requests) + ' requests');
    setText('s-byte-hit-ratio', fmtPct(t.byte_hit_ratio), t.byte_hit_ratio);
    setText('s-bytes', fmtBytes(c.response_bytes.cache) + ' of ' + fmtBytes(bytes) + ' from cache');
    setText('s-offload', fmtPct(t.origin_offload), t.origin_offload);
    setText('s-origin', fmtNum(c.origin_requests) + ' origin requests for ' + fmtNum(t.requests) + ' client requests');
    // Bytes pulled from origins beside bytes sent to clients: prefetch that costs more than
    // it saves shows here as a negative offload.
    setText('s-origin-bytes', fmtBytes(c.origin_bytes), c.origin_bytes);
    setText('s-origin-bytes-sub', 'for ' + fmtBytes(bytes) + ' to clients — byte offload ' + fmtPct(t.byte_offload));
    setText('s-rps', last ? fmtRate(last.rps) : '—', last ? last.rps : null);
    setText('s-rps-sub', 'hits ' + (last ? fmtRate(last.hps) : '—') + '/s, origin ' + (last ? fmtRate(last.orps) : '—') + '/s');
    setText('s-bps', last ? fmtBytes(last.bps) + '/s' : '—', last ? last.bps : null);
    setText('s-bps-sub', 'origin → edge ' + (last ? fmtBytes(last.obps) + '/s' : '—'));
    setText('s-collapsed', fmtNum(c.collapsed), c.collapsed);
    setText('s-fills', 'requests that joined a fill; now ' + c.fills + ' fills, ' + c.fill_readers + ' readers');
    setText('s-prefetch', fmtPct(t.prefetch_hit_ratio), t.prefetch_hit_ratio);
    const lp = c.live_prefetch || {};
    setText('s-prefetch-sub', (lp.started ? 'live segments: ' + fmtNum(lp.used || 0) + ' of ' + fmtNum(lp.started) + ' used' +
      (lp.wasted ? ', ' + fmtNum(lp.wasted) + ' wasted' : '') + '; ' : '') +
      'read-ahead slices: ' + fmtNum(c.prefetch.used) + ' of ' + fmtNum(c.prefetch.started) + ' used');
    setText('s-memory', fmtBytes(c.memory_bytes), c.memory_bytes);
    setText('s-memory-sub', 'of ' + fmtBytes(c.memory_capacity) + ' (' + fmtPct(c.memory_bytes / c.memory_capacity) + '), ' + removals(c, 'memory'));
    $('s-memory-meter').value = c.memory_capacity ? c.memory_bytes / c.memory_capacity : 0;
    if (c.disk_capacity) {
      setText('s-disk', fmtBytes(c.disk_bytes), c.disk_bytes);
      setText('s-disk-sub', 'of ' + fmtBytes(c.disk_capacity) + ' (' + fmtPct(c.disk_bytes / c.disk_capacity) + '), ' + removals(c, 'disk'));
      $('s-disk-meter').value = c.disk_bytes / c.disk_capacity;
    } else {
      setText('s-disk', 'off', 0);
      setText('s-disk-sub', 'no disk tier configured');
    }
    // The raw counters the figures were made from, for comparing with /metrics.
    const panel = $('status-panel');
    panel.dataset.requests = t.requests;
    panel.dataset.hits = t.hits;
    panel.dataset.cacheBytes = c.response_bytes.cache;
    panel.dataset.originBytes = c.response_bytes.origin;
    panel.dataset.originRequests = c.origin_requests;

    const end = new Date(c.time).getTime();
    chart($('c-requests'), h, end, [
      { get: (p) => p.rps, color: '#8aa4c8' },
      { get: (p) => p.hps, color: '#2f9e6e', fill: true },
    ], fmtRate);
    chart($('c-bytes'), h, end, [
      { get: (p) => p.bps, color: '#8aa4c8' },
      { get: (p) => p.cbps, color: '#2f9e6e', fill: true },
      { get: (p) => p.obps, color: '#d08c2e' },
    ], (v) => fmtBytes(v) + '/s');
    chart($('c-ratio'), h, end, [
      { get: (p) => p.byte_hit_ratio, color: '#d08c2e' },
      { get: (p) => p.hit_ratio, color: '#2f9e6e' },
    ], fmtPct, 1);
    chart($('c-origin'), h, end, [
      { get: (p) => p.cps, color: '#8aa4c8' },
      { get: (p) => p.orps, color: '#d08c2e', fill: true },
    ], fmtRate);

    const body = $('s-top').tBodies[0];
    body.replaceChildren();
    for (const o of c.top || []) {
      const tr = document.createElement('tr');
      for (const [text, cls] of [[o.path, 'path'], [fmtRate(o.requests), 'num'], [fmtBytes(o.bytes), 'num']]) {
        const td = document.createElement('td');
        td.textContent = text;
        td.className = cls;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (!body.children.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 3;
      td.className = 'muted';
      td.textContent = 'no requests yet';
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  // removals tells what left a tier: evicted to make room, apart from copies that expired or
  // were replaced by a refresh (a live manifest's, every second) and purges.
  function removals(c, tier) {
    const r = (c.removals || {})[tier] || {};
    let text = fmtNum((c.evictions || {})[tier] || 0) + ' evicted';
    const refreshed = (r.expired || 0) + (r.replaced || 0);
    if (refreshed) text += ', ' + fmtNum(refreshed) + ' expired or refreshed';
    if (r.invalidated) text += ', ' + fmtNum(r.invalidated) + ' purged';
    return text;
  }

  // chart draws series of the points of the last minutes as lines (the first filled below,
  // when asked) on a canvas, with the top of the scale written in the corner.
  const chartWindow = 5 * 60 * 1000;
  const chartGap = 5000; // ms between samples (taken every second) that breaks a line
  function chart(canvas, points, end, series, fmt, fixedMax) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width;
    const hgt = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(hgt * dpr)) canvas.height = Math.round(hgt * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const start = end - chartWindow;
    const pts = points.filter((p) => new Date(p.t).getTime() >= start);
    let max = fixedMax || 0;
    if (!fixedMax) {
      for (const p of pts) for (const s of series) max = Math.max(max, s.get(p) || 0);
      max = niceMax(max);
    }
    const pad = 2;
    const x = (t) => ((t - start) / chartWindow) * w;
    const y = (v) => hgt - pad - (Math.min(v, max) / (max || 1)) * (hgt - 2 * pad - 12);
    g.strokeStyle = '#e3e7ee';
    g.lineWidth = 1;
    for (let i = 1; i <= 4; i++) {
      const gy = Math.round(y((max * i) / 4)) + 0.5;
      g.beginPath(); g.moveTo(0, gy); g.lineTo(w, gy); g.stroke();
    }
    for (const s of series) {
      g.beginPath();
      let started = false, firstX = 0, lastX = 0, lastT = 0;
      for (const p of pts) {
        const v = s.get(p);
        if (v == null) continue;
        const pt = new Date(p.t).getTime();
        const px = x(pt), py = y(v);
        // A gap in the samples is a gap in the line, not a ramp across it.
        if (!started || pt - lastT > chartGap) { g.moveTo(px, py); if (!started) firstX = px; started = true; } else g.lineTo(px, py);
        lastX = px;
        lastT = pt;
      }
      if (!started) continue;
      g.strokeStyle = s.color;
      g.lineWidth = 1.5;
      g.stroke();
      if (s.fill) {
        g.lineTo(lastX, y(0)); g.lineTo(firstX, y(0)); g.closePath();
        g.globalAlpha = 0.18; g.fillStyle = s.color; g.fill(); g.globalAlpha = 1;
      }
    }
    g.fillStyle = '#6b7485';
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    g.fillText(fmt(max), 4, 1);
    g.textAlign = 'right';
    g.fillText('last 5 min', w - 4, 1);
    g.textAlign = 'left';
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- start ---------------------------------------------------------------------------
  document.body.classList.toggle('status-only', statusOnly);
  $(statusOnly ? 'nav-status' : 'nav-player').setAttribute('aria-current', 'page');
  if (!statusOnly) initPlayer();
  poll();
  setInterval(poll, 1000);
})();
