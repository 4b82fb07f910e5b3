// SPDX-License-Identifier: Apache-2.0
// The instances table: filter, sort, live state (events) and use
// (metrics), and only the rows on screen in the document, so that 1000
// instances scroll as fast as 10.
import { history, onMetrics } from './api.js';
import { bytes, h, statusBadge } from './dom.js';
import { instances, load, subscribe, wantDetails } from './store.js';

// one collator for every comparison: localeCompare with options makes
// a new one per call, 300 ms for a sort of 1000 rows
const collator = new Intl.Collator(undefined, { numeric: true });
const ROW_H = 38;     // px, fixed: the rows on screen follow from scrollTop
const OVERSCAN = 8;

const COLUMNS = [
  { key: 'name', label: 'Name' },
  { key: 'kind', label: 'Kind' },
  { key: 'status', label: 'State' },
  { key: 'image', label: 'Image' },
  { key: 'ips', label: 'IP addresses', value: (r) => (r.ips || []).join(' ') },
  { key: 'cpu', label: 'CPU', value: (r) => lastSample(r.name, 'cpu') ?? -1, numeric: true },
  { key: 'mem', label: 'Memory', value: (r) => lastSample(r.name, 'mem') ?? -1, numeric: true },
];

function lastSample(name, k) {
  const h2 = history.get(name);
  if (!h2 || !h2.length) return null;
  return h2[h2.length - 1][k];
}

let sortKey = 'name';
let sortDir = 1;
let filterText = '';

export function renderInstances(main) {
  const filter = h('input', {
    type: 'search', id: 'filter', placeholder: 'name, state, image, address…',
    value: filterText, autocomplete: 'off',
  });
  const count = h('span', { class: 'muted', id: 'count', role: 'status' });
  const thead = h('thead', {}, h('tr', {}, COLUMNS.map((c) => {
    const b = h('button', { type: 'button', class: 'sort', 'data-key': c.key }, c.label);
    b.addEventListener('click', () => {
      if (sortKey === c.key) sortDir = -sortDir; else { sortKey = c.key; sortDir = 1; }
      update(true);
    });
    return h('th', { scope: 'col', 'data-key': c.key }, b);
  })));
  const tbody = h('tbody', { id: 'instance-rows' });
  const table = h('table', { class: 'grid', id: 'instances', 'aria-rowcount': 0 },
    h('caption', { class: 'sr-only' }, 'Instances'), thead, tbody);
  const scroller = h('div', { class: 'scroller', tabindex: '0', 'aria-label': 'Instances table' }, table);

  main.replaceChildren(
    h('div', { class: 'row between' },
      h('h1', {}, 'Instances'),
      h('a', { class: 'button primary', href: '#/create', id: 'new-instance' }, 'Create instance')),
    h('div', { class: 'row' }, h('label', { for: 'filter', class: 'sr-only' }, 'Filter instances'), filter, count),
    scroller);

  let rows = [];
  function computeRows() {
    const q = filterText.trim().toLowerCase();
    const col = COLUMNS.find((c) => c.key === sortKey);
    const val = col.value || ((r) => r[col.key] ?? '');
    rows = [...instances.values()].filter((r) => !q
      || r.name.toLowerCase().includes(q) || (r.status || '').includes(q)
      || (r.image || '').toLowerCase().includes(q) || (r.kind || '').includes(q)
      || (r.ips || []).some((ip) => ip.includes(q)));
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      const c = col.numeric ? x - y : collator.compare(String(x), String(y));
      return (c || collator.compare(a.name, b.name)) * sortDir;
    });
  }

  function cell(r, key) {
    switch (key) {
      case 'name': return h('td', {}, h('a', { href: `#/instance/${encodeURIComponent(r.name)}` }, r.name));
      case 'kind': return h('td', {}, r.kind === 'vm' ? 'VM' : r.kind);
      case 'status': return h('td', {}, statusBadge(r.status));
      case 'ips': return h('td', { class: 'mono' }, (r.ips || []).join(', ') || (r.detailAt ? '—' : '…'));
      case 'cpu': {
        const v = lastSample(r.name, 'cpu');
        return h('td', { class: 'num' }, v === null ? '—' : `${(v * 100).toFixed(1)}%`);
      }
      case 'mem': {
        const v = lastSample(r.name, 'mem');
        return h('td', { class: 'num' }, v === null ? '—' : bytes(v),
          r.memoryLimit ? h('span', { class: 'muted' }, ` / ${bytes(r.memoryLimit)}`) : null);
      }
      default: return h('td', {}, r[key] ?? '');
    }
  }

  function paint() {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const shown = rows.slice(first, last);
    const before = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
    before.style.height = `${first * ROW_H}px`;
    const after = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
    after.style.height = `${(rows.length - last) * ROW_H}px`;
    tbody.replaceChildren(before, ...shown.map((r, i) => h('tr', {
      'data-name': r.name, 'aria-rowindex': first + i + 2,
    }, COLUMNS.map((c) => cell(r, c.key)))), after);
    wantDetails(shown);
  }

  function update(resort) {
    if (resort !== false) computeRows();
    for (const th of thead.querySelectorAll('th')) {
      th.setAttribute('aria-sort', th.dataset.key === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
    }
    table.setAttribute('aria-rowcount', rows.length + 1);
    count.textContent = rows.length === instances.size
      ? `${instances.size} instance${instances.size === 1 ? '' : 's'}`
      : `${rows.length} of ${instances.size}`;
    paint();
  }

  let frame = 0;
  scroller.addEventListener('scroll', () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); });
  });
  filter.addEventListener('input', () => { filterText = filter.value; update(true); });

  const off = subscribe(() => update(true));
  const offMetrics = onMetrics(() => update(sortKey === 'cpu' || sortKey === 'mem'));
  load().then(() => {
    update(true);
    // for bench/ui: navigation to the table drawn
    performance.mark('instances-rendered');
    document.body.dataset.ready = 'instances';
  });
  return () => { off(); offMetrics(); };
}
