// SPDX-License-Identifier: Apache-2.0
// A terminal in the page: xterm.js (vendor/, from npm, loaded only when
// a terminal opens) on the instance's exec or console websocket.
import { api } from './api.js';
import { h, toast } from './dom.js';

function vendor(name) {
  const m = JSON.parse(document.getElementById('vendor').textContent || '{}');
  return `/ui/${m[name] || name}`;
}

let cssLoaded = false;

export async function openTerminal(box, name, mode) {
  if (!cssLoaded) {
    document.head.append(h('link', { rel: 'stylesheet', href: vendor('vendor/xterm.css') }));
    cssLoaded = true;
  }
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import(vendor('vendor/xterm.mjs')), import(vendor('vendor/addon-fit.mjs'))]);
  const term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const close = h('button', { type: 'button', class: 'small', id: 'term-close' }, 'Close terminal');
  const screen = h('div', { class: 'term', id: 'terminal', 'aria-label': `Terminal of ${name}` });
  box.replaceChildren(h('div', { class: 'row between' }, h('span', { class: 'muted', id: 'term-status' }, 'connecting…'), close), screen);
  term.open(screen);
  fit.fit();
  const status = box.querySelector('#term-status');
  let ws;
  try {
    ws = await connect(name, mode, term.cols, term.rows);
  } catch (e) {
    status.textContent = `no terminal: ${e.message}`;
    toast(`Terminal: ${e.message}`, 'error');
    term.dispose();
    return () => {};
  }
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  ws.onopen = () => { status.textContent = mode === 'exec' ? 'shell' : 'console'; term.focus(); };
  ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data));
  ws.onclose = () => { status.textContent = 'ended'; };
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onResize(({ cols, rows }) => resize(ws, cols, rows));
  const ro = new ResizeObserver(() => fit.fit());
  ro.observe(screen);
  const end = () => { ro.disconnect(); try { ws.close(); } catch { /* closed */ } term.dispose(); box.replaceChildren(); };
  close.addEventListener('click', end);
  return end;
}

// The API's exec / console websockets (filled in with the exec API).
async function connect(name, mode, cols, rows) {
  void api; void cols; void rows;
  throw new Error(`this server has no ${mode} websocket yet`);
}

function resize(ws, cols, rows) { void ws; void cols; void rows; }
