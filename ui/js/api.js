// SPDX-License-Identifier: Apache-2.0
// The console's only way to the server: the same REST API as the CLI,
// on the page's own origin, with the session cookie (sent by the
// browser) and the session's CSRF token on every change.

let csrfToken = null;
let sessionReady = null;  // resolves once the CSRF token is known

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.path = body && body.path;  // the request body's field at fault
  }
}

// Reads the session's CSRF token; a page without a session goes to the
// login explanation.
export function startSession() {
  sessionReady = readSession();
  return sessionReady;
}

async function readSession() {
  const r = await fetch('/ui/session', { credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401) {
    location.replace('/ui/');
    throw new ApiError(401, { error: 'not logged in' });
  }
  const j = await r.json();
  csrfToken = j.metadata.csrf_token;
  return j.metadata;
}

export async function logout() {
  await sessionReady;
  await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrfToken || '' } });
  csrfToken = null;
}

// Calls the API; resolves to the envelope's metadata (sync), or to
// {operation, metadata} (async, 202).  Errors reject with ApiError.
export async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') {
    await sessionReady;
    headers['X-CSRF-Token'] = csrfToken || '';
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    // the session ended: the login page says how to get a new one
    location.replace('/ui/');
    throw new ApiError(401, { error: 'session ended' });
  }
  const type = r.headers.get('Content-Type') || '';
  if (!type.startsWith('application/json')) {
    const text = await r.text();
    if (!r.ok) throw new ApiError(r.status, { error: text.trim() || `HTTP ${r.status}` });
    return text;
  }
  const j = await r.json();
  if (j.type === 'error' || !r.ok) throw new ApiError(r.status, j);
  if (j.type === 'async') return { operation: j.operation, metadata: j.metadata };
  return j.metadata;
}

export const get = (path) => api('GET', path);

// ---- events: one websocket for the page, listeners by type ----

const listeners = new Set();
const statusListeners = new Set();
export const eventLog = [];  // the last 1000 events since the page opened
let socket = null;
let retry = 500;
let opened = false;

export function onEvent(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export function onLiveStatus(fn) { statusListeners.add(fn); return () => statusListeners.delete(fn); }

function setLive(state) { for (const fn of statusListeners) fn(state); }

export function connectEvents() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = new WebSocket(`${scheme}//${location.host}/1.0/events`);
  socket.onopen = () => {
    retry = 500;
    setLive('live');
    // what happened while the stream was down is not replayed: readers
    // read their state again
    if (opened) for (const fn of listeners) fn({ type: 'resync', metadata: {} });
    opened = true;
  };
  socket.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    eventLog.push(ev);
    if (eventLog.length > 1000) eventLog.shift();
    for (const fn of listeners) {
      try { fn(ev); } catch (e) { console.error(e); }
    }
  };
  socket.onclose = () => {
    setLive('offline');
    setTimeout(connectEvents, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

// ---- operations ----

// Waits for an operation to end; onProgress gets its metadata as the
// events bring it.  Resolves to the ended operation; rejects on failure.
export async function waitOperation(url, onProgress) {
  const id = url.split('/').pop();
  const off = onEvent((ev) => {
    if (ev.type === 'operation' && ev.metadata.id === id && onProgress) onProgress(ev.metadata);
  });
  try {
    for (;;) {
      const op = await get(`${url}/wait?timeout=20`);
      if (op.status === 'success') return op;
      if (op.status === 'failure' || op.status === 'cancelled')
        throw new ApiError(500, { error: op.err || op.status });
    }
  } finally {
    off();
  }
}

// ---- metrics: polled while a page wants them ----

// name -> array of samples {t, cpu (cores busy), mem (bytes), rx, tx,
// rd, wr (bytes/s)} over the last hour
export const history = new Map();
const HOUR_MS = 3600 * 1000;
let metricsTimer = null;
let metricsMissing = false;
const metricsListeners = new Set();
let last = new Map();  // name -> {t, counters}

export function onMetrics(fn) {
  metricsListeners.add(fn);
  if (!metricsTimer) { pollMetrics(); metricsTimer = setInterval(pollMetrics, 5000); }
  return () => {
    metricsListeners.delete(fn);
    if (metricsListeners.size === 0) { clearInterval(metricsTimer); metricsTimer = null; }
  };
}
export const metricsAvailable = () => !metricsMissing;

// Prometheus text: `name{label="v",...} value` lines.
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// The per-instance series of /1.0/metrics (docs/api.md, "Metrics").
const SERIES = {
  cloison_cpu_seconds_total: 'cpu',
  cloison_memory_usage_bytes: 'mem',
  cloison_network_receive_bytes_total: 'rx',
  cloison_network_transmit_bytes_total: 'tx',
  cloison_disk_read_bytes_total: 'rd',
  cloison_disk_written_bytes_total: 'wr',
};
const classify = (name) => SERIES[name] || null;

export function metricsByInstance(samples) {
  const by = new Map();
  for (const s of samples) {
    const name = s.labels.name;
    const kind = classify(s.name);
    if (!name || !kind) continue;
    const o = by.get(name) || {};
    o[kind] = (o[kind] || 0) + s.value;  // summed over devices
    by.set(name, o);
  }
  return by;
}

async function pollMetrics() {
  if (metricsMissing) return;
  let text;
  try {
    text = await api('GET', '/1.0/metrics');
  } catch (e) {
    if (e.status === 404) metricsMissing = true;
    for (const fn of metricsListeners) fn();
    return;
  }
  const now = Date.now();
  const current = metricsByInstance(parseMetrics(typeof text === 'string' ? text : ''));
  for (const [name, c] of current) {
    const prev = last.get(name);
    const dt = prev ? (now - prev.t) / 1000 : 0;
    const rate = (k) => (prev && dt > 0 && c[k] !== undefined && prev.c[k] !== undefined
      ? Math.max(0, (c[k] - prev.c[k]) / dt) : null);
    const h = history.get(name) || [];
    h.push({ t: now, cpu: rate('cpu'), mem: c.mem ?? null, rx: rate('rx'), tx: rate('tx'), rd: rate('rd'), wr: rate('wr') });
    while (h.length && h[0].t < now - HOUR_MS) h.shift();
    history.set(name, h);
  }
  last = new Map([...current].map(([n, c]) => [n, { t: now, c }]));
  for (const fn of metricsListeners) fn();
}
