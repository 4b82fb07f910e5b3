// SPDX-License-Identifier: Apache-2.0
// Networks: list, create, delete.
import { api, get } from './api.js';
import { confirmAction, field, h, setFieldError, toast } from './dom.js';

export function renderNetworks(main) {
  const tbody = h('tbody', { id: 'network-rows' });
  const f = {
    name: field('Name', h('input', { id: 'net-name', autocomplete: 'off' })),
    subnet: field('Subnet', h('input', { id: 'net-subnet', placeholder: '10.88.5.0/24 (or automatic)' })),
    mode: field('Mode', h('select', { id: 'net-mode' }, ['nat', 'routed', 'isolated'].map((m) => h('option', { value: m }, m)))),
  };
  const general = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'row wrap', id: 'net-form' }, f.name.wrap, f.subnet.wrap, f.mode.wrap,
    h('button', { type: 'submit', class: 'primary' }, 'Create network'), general);

  async function load() {
    const list = await get('/1.0/networks?recursion=1');
    tbody.replaceChildren(...list.map((n) => h('tr', { 'data-name': n.name },
      h('td', {}, n.name), h('td', { class: 'mono' }, n.subnet), h('td', {}, n.mode),
      h('td', { class: 'mono' }, n.bridge || ''), h('td', { class: 'num' }, String(n.instances ?? 0)),
      h('td', {}, h('button', {
        type: 'button', class: 'small danger', 'aria-label': `Delete network ${n.name}`,
        onclick: async () => {
          if (!await confirmAction(`Delete network ${n.name}?`, 'Its bridge and NAT rules are removed.', 'Delete')) return;
          try { await api('DELETE', `/1.0/networks/${encodeURIComponent(n.name)}`); load(); } catch (e) { toast(e.message, 'error'); }
        },
      }, 'Delete')))));
    if (!list.length) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No networks.')));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const x of Object.values(f)) setFieldError(x, '');
    general.textContent = '';
    const body = { name: f.name.input.value.trim(), mode: f.mode.input.value };
    if (f.subnet.input.value.trim()) body.subnet = f.subnet.input.value.trim();
    try {
      await api('POST', '/1.0/networks', body);
      f.name.input.value = '';
      f.subnet.input.value = '';
      load();
    } catch (err) {
      const target = f[err.path];
      if (target) setFieldError(target, err.message); else general.textContent = err.message;
    }
  });

  main.replaceChildren(h('h1', {}, 'Networks'),
    h('section', { 'aria-labelledby': 'h-newnet' }, h('h2', { id: 'h-newnet' }, 'Create a network'), form),
    h('div', { class: 'scroller' }, h('table', { class: 'grid' }, h('caption', { class: 'sr-only' }, 'Networks'),
      h('thead', {}, h('tr', {}, ['Name', 'Subnet', 'Mode', 'Bridge', 'Instances', ''].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)));
  load().catch((e) => toast(e.message, 'error'));
}
