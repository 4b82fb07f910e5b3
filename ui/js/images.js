// SPDX-License-Identifier: Apache-2.0
// Images: the store's list, a pull from a registry with its progress,
// delete.
import { api, get, waitOperation } from './api.js';
import { bytes, confirmAction, field, h, progressBar, setFieldError, toast, when } from './dom.js';

export function renderImages(main) {
  const tbody = h('tbody', { id: 'image-rows' });
  const ref = field('Image reference', h('input', { id: 'pull-ref', placeholder: 'registry.example:5000/busybox:latest', autocomplete: 'off' }));
  const progress = h('div', { id: 'pull-progress' });
  const form = h('form', { class: 'row wrap', id: 'pull-form' }, ref.wrap, h('button', { type: 'submit', class: 'primary' }, 'Pull'));

  async function load() {
    const list = await get('/1.0/images?recursion=1');
    tbody.replaceChildren(...list.map((i) => h('tr', { 'data-id': i.id },
      h('td', {}, i.names.join(', ') || h('span', { class: 'muted' }, '(no name)')),
      h('td', { class: 'mono' }, i.id.slice(0, 12)),
      h('td', { class: 'num' }, bytes(i.size)),
      h('td', {}, when(i.created)),
      h('td', { class: 'num' }, String(i.uses ?? 0)),
      h('td', {}, h('button', {
        type: 'button', class: 'small danger', 'aria-label': `Delete image ${i.names[0] || i.id.slice(0, 12)}`,
        onclick: async () => {
          if (!await confirmAction('Delete this image?', `${i.names.join(', ') || i.id}: instances made from it keep working.`, 'Delete')) return;
          try { await api('DELETE', `/1.0/images/${encodeURIComponent(i.names[0] || i.id)}`); load(); } catch (e) { toast(e.message, 'error'); }
        },
      }, 'Delete')))));
    if (!list.length) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No images.')));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setFieldError(ref, '');
    const value = ref.input.value.trim();
    const bar = progressBar(`Pulling ${value}`);
    try {
      const r = await api('POST', '/1.0/images', { source: { type: 'registry', ref: value } });
      progress.replaceChildren(bar.wrap);
      await waitOperation(r.operation, (op) => {
        const p = op.metadata && op.metadata.progress;
        if (p) bar.set(p.done, p.total, p.what);
      });
      progress.replaceChildren(h('p', {}, `Pulled ${value}.`));
      load();
    } catch (err) {
      progress.replaceChildren();
      if (err.path) setFieldError(ref, err.message); else toast(err.message, 'error');
    }
  });

  main.replaceChildren(h('h1', {}, 'Images'),
    h('section', { 'aria-labelledby': 'h-pull' }, h('h2', { id: 'h-pull' }, 'Pull from a registry'), form, progress),
    h('div', { class: 'scroller' }, h('table', { class: 'grid' }, h('caption', { class: 'sr-only' }, 'Images'),
      h('thead', {}, h('tr', {}, ['Names', 'ID', 'Size', 'Created', 'Used by', ''].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)));
  load().catch((e) => toast(e.message, 'error'));
}
