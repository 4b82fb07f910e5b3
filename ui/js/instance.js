// SPDX-License-Identifier: Apache-2.0
// One instance: its actions, what it is, a terminal, its snapshots as a
// timeline, graphs of the last hour, its console log.
import { api, get, history, metricsAvailable, onEvent, onMetrics, waitOperation } from './api.js';
import { bytes, confirmAction, field, h, setFieldError, statusBadge, toast, when } from './dom.js';
import { plot } from './plot.js';
import { instances, refresh, subscribe } from './store.js';

export function renderInstance(main, name, navigate) {
  const url = `/1.0/instances/${encodeURIComponent(name)}`;
  const head = h('div', { class: 'row between wrap' });
  const actions = h('div', { class: 'row wrap', role: 'toolbar', 'aria-label': 'Actions' });
  const busy = h('div', { id: 'op-status', role: 'status', class: 'muted' });
  const overview = h('dl', { class: 'facts', id: 'overview' });
  const termBox = h('div', { id: 'terminal-box' });
  const snapList = h('ol', { class: 'timeline', id: 'snapshots' });
  const graphs = h('div', { class: 'graphs', id: 'graphs' });
  const logPre = h('pre', { class: 'log', id: 'log', tabindex: '0' });
  let running = 0;
  const cleanups = [];

  async function act(label, method, path, body, done) {
    running++;
    paint();
    busy.textContent = `${label}…`;
    try {
      const r = await api(method, path, body);
      if (r && r.operation) await waitOperation(r.operation);
      busy.textContent = `${label}: done`;
      if (done) done();
    } catch (e) {
      busy.textContent = '';
      toast(`${label}: ${e.message}`, 'error');
    } finally {
      running--;
      refresh(name);
      paint();
    }
  }

  const snapName = field('Snapshot name', h('input', { id: 'snap-name', placeholder: 'e.g. before-upgrade', autocomplete: 'off' }));
  const stateful = h('input', { type: 'checkbox', id: 'snap-stateful' });
  const snapForm = h('form', { class: 'row wrap', id: 'snap-form' }, snapName.wrap,
    h('div', { class: 'check', id: 'stateful-box' }, stateful, h('label', { for: 'snap-stateful' }, 'with memory (VMs)')),
    h('button', { type: 'submit', id: 'snap-create' }, 'Take snapshot'));
  snapForm.addEventListener('submit', (e) => {
    e.preventDefault();
    setFieldError(snapName, '');
    const body = { name: snapName.input.value.trim() };
    if (stateful.checked) body.stateful = true;
    api('POST', `${url}/snapshots`, body).then(async (r) => {
      snapName.input.value = '';
      busy.textContent = `Snapshot ${body.name}…`;
      await waitOperation(r.operation);
      busy.textContent = `Snapshot ${body.name}: done`;
      loadSnapshots();
    }).catch((err) => {
      if (err.path) setFieldError(snapName, err.message); else toast(err.message, 'error');
    });
  });

  function paint() {
    const r = instances.get(name);
    if (!r) {
      head.replaceChildren(h('h1', {}, name), h('span', { class: 'muted' }, 'being created, or gone'));
      actions.replaceChildren();
      return;
    }
    const d = r.detail || {};
    const cfg = d.config || {};
    const isFrozen = r.status === 'frozen';
    // frozen: a workload exists (stop and delete end it), but takes no shell
    const isRunning = r.status === 'running' || isFrozen;
    head.replaceChildren(h('h1', {}, r.name, ' ', statusBadge(r.status)),
      h('span', { class: 'muted' }, `${r.kind === 'vm' ? 'virtual machine' : r.kind} from ${r.image}`));
    const btn = (label, id, on, enabled, cls) => h('button', {
      type: 'button', id, class: cls, disabled: !enabled || running > 0, onclick: on,
    }, label);
    actions.replaceChildren(
      btn('Start', 'act-start', () => act('Start', 'PUT', `${url}/state`, { action: 'start' }), !isRunning),
      btn('Stop', 'act-stop', () => act('Stop', 'PUT', `${url}/state`, { action: 'stop', timeout: 10 }), isRunning),
      btn('Restart', 'act-restart', () => act('Restart', 'PUT', `${url}/state`, { action: 'restart' }), isRunning),
      isFrozen
        ? btn('Unfreeze', 'act-unfreeze', () => act('Unfreeze', 'PUT', `${url}/state`, { action: 'unfreeze' }), true)
        : btn('Freeze', 'act-freeze', () => act('Freeze', 'PUT', `${url}/state`, { action: 'freeze' }), isRunning),
      btn('Copy', 'act-copy', async () => {
        const to = prompt(`Name of the copy of ${name}:`, `${name}-copy`);
        if (to) act(`Copy to ${to}`, 'POST', '/1.0/instances', { name: to, source: { type: 'copy', instance: name } });
      }, true),
      btn('Delete', 'act-delete', async () => {
        const ok = await confirmAction(`Delete ${name}?`,
          `${isRunning ? 'It is running and will be stopped. ' : ''}Its files and snapshots are deleted; this cannot be undone.`, 'Delete');
        if (ok) act('Delete', 'DELETE', `${url}${isRunning ? '?force=1' : ''}`, undefined, () => navigate('#/instances'));
      }, true, 'danger'));
    const ips = (d.network || []).map((n) => `${n.address}/${n.prefix_len} (${n.network})`);
    const ports = (d.network || []).flatMap((n) => n.port_forwards || []).concat(cfg.ports || []);
    const fact = (k, v, id) => [h('dt', {}, k), h('dd', { id }, v)];
    overview.replaceChildren(
      ...fact('State', r.status, 'fact-state'),
      ...fact('IP addresses', ips.join(', ') || '—', 'fact-ips'),
      ...fact('CPUs', cfg.cpus ? String(cfg.cpus) : 'no limit'),
      ...fact('Memory', cfg.memory ? bytes(cfg.memory) : 'no limit'),
      ...fact('Disk', cfg.disk_size ? bytes(cfg.disk_size) : '—'),
      ...fact('Port forwards', ports.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(', ') || '—'),
      ...fact('Command', (cfg.command || []).join(' ') || 'the image\'s'),
      ...fact('Created', when(r.created)),
      ...fact('PID', r.pid ? String(r.pid) : '—'));
    document.getElementById('stateful-box').hidden = r.kind !== 'vm';
    for (const id of ['open-shell', 'open-console']) document.getElementById(id).disabled = !isRunning || isFrozen;
  }

  async function loadSnapshots() {
    let list = [];
    try { list = await get(`${url}/snapshots?recursion=1`); } catch { return; }
    list.sort((a, b) => (a.created || 0) - (b.created || 0));
    if (!list.length) { snapList.replaceChildren(h('li', { class: 'muted' }, 'No snapshots yet.')); return; }
    snapList.replaceChildren(...list.map((s) => h('li', { 'data-snapshot': s.name },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      h('strong', {}, s.name), ' ',
      h('span', { class: 'muted' }, `${when(s.created)}${s.stateful ? ', with memory' : ''}`), ' ',
      h('button', {
        type: 'button', class: 'small', 'data-action': 'restore',
        'aria-label': `Restore ${s.name}`,
        onclick: async () => {
          if (await confirmAction(`Restore ${s.name}?`, `${name} goes back to ${when(s.created)}; changes made since are lost.`, 'Restore'))
            act(`Restore ${s.name}`, 'POST', `${url}/snapshots/${encodeURIComponent(s.name)}`, undefined, loadSnapshots);
        },
      }, 'Restore'),
      h('button', {
        type: 'button', class: 'small danger', 'data-action': 'delete',
        'aria-label': `Delete snapshot ${s.name}`,
        onclick: async () => {
          if (await confirmAction(`Delete snapshot ${s.name}?`, 'The instance itself is not changed.', 'Delete'))
            act(`Delete snapshot ${s.name}`, 'DELETE', `${url}/snapshots/${encodeURIComponent(s.name)}`, undefined, loadSnapshots);
        },
      }, 'Delete'))));
  }

  function paintGraphs() {
    if (!metricsAvailable()) {
      graphs.replaceChildren(h('p', { class: 'muted' }, 'This server publishes no metrics (/1.0/metrics).'));
      return;
    }
    const pts = history.get(name) || [];
    const s = (k) => pts.map((p) => ({ t: p.t, v: p[k] }));
    const rate = (v) => `${bytes(v)}/s`;
    graphs.replaceChildren(
      h('figure', {}, h('figcaption', {}, 'CPU'), plot('CPU', [{ label: 'CPU', points: s('cpu') }], (v) => `${(v * 100).toFixed(0)}%`)),
      h('figure', {}, h('figcaption', {}, 'Memory'), plot('Memory', [{ label: 'used', points: s('mem') }], bytes)),
      h('figure', {}, h('figcaption', {}, 'Network (in, out)'), plot('Network', [
        { label: 'in', points: s('rx') }, { label: 'out', points: s('tx'), cls: 'second' }], rate)),
      h('figure', {}, h('figcaption', {}, 'Disk (read, write)'), plot('Disk', [
        { label: 'read', points: s('rd') }, { label: 'write', points: s('wr'), cls: 'second' }], rate)));
  }

  async function loadLog() {
    try {
      const text = await get(`${url}/logs`);
      logPre.textContent = String(text).slice(-20000) || '(empty)';
    } catch (e) { logPre.textContent = e.message; }
  }

  const termButtons = h('div', { class: 'row' },
    h('button', { type: 'button', id: 'open-shell', onclick: () => openTerminal('exec') }, 'Open a shell'),
    h('button', { type: 'button', id: 'open-console', onclick: () => openTerminal('console') }, 'Attach the console'));
  async function openTerminal(mode) {
    const { openTerminal: open } = await import('./terminal.js');
    cleanups.push(await open(termBox, name, mode));
  }

  main.replaceChildren(
    h('p', {}, h('a', { href: '#/instances' }, '← Instances')),
    head, actions, busy,
    h('section', { 'aria-labelledby': 'h-overview' }, h('h2', { id: 'h-overview' }, 'Overview'), overview),
    h('section', { 'aria-labelledby': 'h-term' }, h('h2', { id: 'h-term' }, 'Terminal'), termButtons, termBox),
    h('section', { 'aria-labelledby': 'h-snap' }, h('h2', { id: 'h-snap' }, 'Snapshots'), snapForm, snapList),
    h('section', { 'aria-labelledby': 'h-graphs' }, h('h2', { id: 'h-graphs' }, 'Use, last hour'), graphs),
    h('section', { 'aria-labelledby': 'h-log' }, h('h2', { id: 'h-log' }, 'Console log'),
      h('button', { type: 'button', class: 'small', onclick: loadLog }, 'Refresh'), logPre));

  cleanups.push(subscribe(paint));
  cleanups.push(onMetrics(paintGraphs));
  cleanups.push(onEvent((ev) => {
    if (ev.type === 'lifecycle' && (ev.metadata.source || '').startsWith(`${url}/snapshots`)) loadSnapshots();
  }));
  refresh(name).then(paint);
  loadSnapshots();
  loadLog();
  paintGraphs();
  return () => { for (const c of cleanups) c(); };
}
