// SPDX-License-Identifier: Apache-2.0
// The instances as the page knows them: the list once, then kept current
// by lifecycle events (an instance named by an event is read again).
// Details the list does not carry (addresses, limits) are read for the
// rows on screen only, so 1000 instances cost one request.
import { get, onEvent } from './api.js';

export const instances = new Map();  // name -> row
const subscribers = new Set();
let loaded = null;
let listening = false;
const detailQueue = [];
let detailRunning = 0;

function notify() { for (const fn of subscribers) fn(); }
export function subscribe(fn) { subscribers.add(fn); return () => subscribers.delete(fn); }

function rowFrom(info, old) {
  const row = old || {};
  Object.assign(row, {
    name: info.name, kind: info.kind, status: info.status, image: info.image,
    created: info.created, pid: info.pid,
  });
  if (info.config) {
    row.detail = info;
    row.ips = (info.network || []).map((n) => n.address).filter(Boolean);
    row.cpus = info.config.cpus;
    row.memoryLimit = info.config.memory;
    row.detailAt = Date.now();
  }
  return row;
}

export function load() {
  if (!loaded) {
    loaded = get('/1.0/instances?recursion=1').then((list) => {
      instances.clear();
      for (const i of list) instances.set(i.name, rowFrom(i));
      notify();
    });
    if (!listening) onEvent(onLifecycle);
    listening = true;
  }
  return loaded;
}

export async function refresh(name) {
  try {
    const info = await get(`/1.0/instances/${encodeURIComponent(name)}`);
    instances.set(name, rowFrom(info, instances.get(name)));
  } catch (e) {
    if (e.status === 404) instances.delete(name);
  }
  notify();
}

function onLifecycle(ev) {
  if (ev.type === 'resync') {
    loaded = null;
    load();
    return;
  }
  if (ev.type !== 'lifecycle') return;
  const m = /^\/1\.0\/instances\/([^/]+)/.exec(ev.metadata.source || '');
  if (!m) return;
  const name = decodeURIComponent(m[1]);
  if (ev.metadata.action === 'instance-deleted') {
    instances.delete(name);
    notify();
  } else refresh(name);
}

// Reads the details of rows shown on screen, four at a time.
export function wantDetails(rows) {
  for (const r of rows) {
    if (r.detailAt || r.detailQueued) continue;
    r.detailQueued = true;
    detailQueue.push(r.name);
  }
  pump();
}

function pump() {
  while (detailRunning < 4 && detailQueue.length) {
    const name = detailQueue.shift();
    detailRunning++;
    get(`/1.0/instances/${encodeURIComponent(name)}`)
      .then((info) => { const r = instances.get(name); if (r) rowFrom(info, r); })
      .catch(() => {})
      .finally(() => {
        const r = instances.get(name);
        if (r) { r.detailQueued = false; r.detailAt = r.detailAt || Date.now(); }
        detailRunning--;
        if (detailQueue.length === 0) notify();
        pump();
      });
  }
}
