// SPDX-License-Identifier: Apache-2.0
// The console's entry: the session, the live connection, and the views by
// the address's #fragment (#/instances, #/instance/NAME, #/create,
// #/images, #/networks, #/events).
import { connectEvents, logout, onLiveStatus, startSession } from './api.js';
import { toast } from './dom.js';
import { renderCreate } from './create.js';
import { renderEvents } from './events.js';
import { renderImages } from './images.js';
import { renderInstance } from './instance.js';
import { renderInstances } from './instances.js';
import { renderNetworks } from './networks.js';
import { load } from './store.js';

const main = document.getElementById('main');
let cleanup = null;

function navigate(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const parts = (location.hash.replace(/^#\/?/, '') || 'instances').split('/');
  const section = parts[0] === 'instance' || parts[0] === 'create' ? 'instances' : parts[0];
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let r;
  switch (parts[0]) {
    case 'instances': r = renderInstances(main); document.title = 'Instances · cloison'; break;
    case 'instance': {
      const name = decodeURIComponent(parts.slice(1).join('/'));
      r = renderInstance(main, name, navigate);
      document.title = `${name} · cloison`;
      break;
    }
    case 'create': r = renderCreate(main, navigate); document.title = 'Create · cloison'; break;
    case 'images': r = renderImages(main); document.title = 'Images · cloison'; break;
    case 'networks': r = renderNetworks(main); document.title = 'Networks · cloison'; break;
    case 'events': r = renderEvents(main); document.title = 'Events · cloison'; break;
    default: navigate('#/instances'); return;
  }
  cleanup = typeof r === 'function' ? r : null;
}

async function start() {
  // the first page's list (preloaded by index.html) while the session is read
  if (/^(#\/?(instances)?)?$/.test(location.hash)) load().catch(() => {});
  await startSession();
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
