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
  let session;
  try {
    session = await connect(name, mode, term.cols, term.rows);
  } catch (e) {
    status.textContent = `no terminal: ${e.message}`;
    toast(`Terminal: ${e.message}`, 'error');
    term.dispose();
    return () => {};
  }
  const { data: ws, control } = session;
  const enc = new TextEncoder();
  ws.binaryType = 'arraybuffer';
  const ready = () => { status.textContent = mode === 'exec' ? 'shell' : 'console'; term.focus(); };
  if (ws.readyState === 1) ready(); else ws.addEventListener('open', ready);
  ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data));
  ws.onclose = () => { status.textContent = 'ended'; };
  // keys as bytes (binary frames): Ctrl-C is byte 3, which the pty turns
  // into SIGINT for the shell's foreground job
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onResize(({ cols, rows }) => {
    const msg = JSON.stringify({ command: 'window-resize', args: { width: String(cols), height: String(rows) } });
    if (control.readyState === 1) control.send(msg);
  });
  const ro = new ResizeObserver(() => fit.fit());
  ro.observe(screen);
  const end = () => {
    ro.disconnect();
    for (const s of new Set([ws, control])) { try { s.close(); } catch { /* closed */ } }
    term.dispose();
    box.replaceChildren();
  };
  close.addEventListener('click', end);
  return end;
}

function socket(path) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return new WebSocket(`${scheme}//${location.host}${path}`);
}

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(ws), { once: true });
    ws.addEventListener('error', () => reject(new Error('the websocket was refused')), { once: true });
  });
}

// An interactive shell: an exec operation with a pty, its websockets "0"
// (the terminal) and "control" (window-resize, signal).  The console:
// one websocket, bytes in binary frames, control messages in text ones.
async function connect(name, mode, cols, rows) {
  const n = encodeURIComponent(name);
  if (mode === 'console') {
    const ws = socket(`/1.0/instances/${n}/console?width=${cols}&height=${rows}`);
    return { data: await opened(ws), control: ws };
  }
  const r = await api('POST', `/1.0/instances/${n}/exec`, {
    command: ['sh', '-c', 'if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi'],
    interactive: true, width: cols, height: rows, 'wait-for-websocket': true,
    environment: { TERM: 'xterm-256color' },
  });
  const fds = r.metadata.metadata.fds;
  const [data, control] = await Promise.all([
    opened(socket(`${r.operation}/websocket?secret=${fds['0']}`)),
    opened(socket(`${r.operation}/websocket?secret=${fds.control}`))]);
  return { data, control };
}
