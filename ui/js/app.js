// SPDX-License-Identifier: Apache-2.0
// The console's entry: the session, the live connection, and the views by
// the address's #fragment (#/instances, #/instance/NAME, #/create,
// #/images, #/networks, #/events).  The instances table, the first page,
// is loaded with this module; the other views when first shown.
import { connectEvents, logout, onLiveStatus, startSession } from './api.js';
import { toast } from './dom.js';
import { renderInstances } from './instances.js';
import { load } from './store.js';

const main = document.getElementById('main');
let cleanup = null;
let generation = 0;

const VIEWS = {
  create: () => import('./create.js').then((m) => m.renderCreate),
  instance: () => import('./instance.js').then((m) => m.renderInstance),
  images: () => import('./images.js').then((m) => m.renderImages),
  networks: () => import('./networks.js').then((m) => m.renderNetworks),
  events: () => import('./events.js').then((m) => m.renderEvents),
};

function navigate(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

async function route() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const parts = (location.hash.replace(/^#\/?/, '') || 'instances').split('/');
  const view = parts[0];
  const section = view === 'instance' || view === 'create' ? 'instances' : view;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view !== 'instances' && !VIEWS[view]) { navigate('#/instances'); return; }
  const render = view === 'instances' ? renderInstances : await VIEWS[view]();
  if (mine !== generation) return;  // another route was asked for meanwhile
  let r;
  if (view === 'instance') {
    const name = decodeURIComponent(parts.slice(1).join('/'));
    r = render(main, name, navigate);
    document.title = `${name} · cloison`;
  } else {
    r = render(main, navigate);
    document.title = `${view[0].toUpperCase()}${view.slice(1)} · cloison`;
  }
  cleanup = typeof r === 'function' ? r : null;
}

function start() {
  // the first page's list (preloaded by index.html) and the session's CSRF
  // token are asked for together; changes wait for the token (api.js)
  if (/^(#\/?(instances)?)?$/.test(location.hash)) load().catch(() => {});
  startSession().catch(() => {});
  const live = document.getElementById('live');
  onLiveStatus((s) => {
    live.textContent = s === 'live' ? 'live' : 'reconnecting…';
    live.className = `live ${s}`;
  });
  connectEvents();
  document.getElementById('logout').addEventListener('click', async () => {
    await logout();
    location.replace('/ui/');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('unhandledrejection', (e) => {
    if (e.reason && e.reason.status !== 401) toast(String(e.reason.message || e.reason), 'error');
  });
  route();
}

start();
