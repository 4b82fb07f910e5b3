// SPDX-License-Identifier: Apache-2.0
// Small helpers every view shares: building elements, messages, the
// confirmation dialog, formatting.

// h('button', {class: 'x', onclick: f}, 'text', child...)
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function toast(text, kind = 'info') {
  const t = h('div', { class: `toast ${kind}` }, text);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 10000 : 4000);
  return t;
}

// The confirmation dialog; resolves true when confirmed.
export function confirmAction(title, text, okLabel = 'Confirm') {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  d.returnValue = 'cancel';
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
  });
}

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

export function when(seconds) {
  if (!seconds) return '—';
  return new Date(seconds * 1000).toLocaleString();
}

export function statusBadge(status) {
  return h('span', { class: `badge s-${status}` }, status);
}

// A labelled form field: returns {wrap, input, error}.
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const error = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  input.setAttribute('aria-describedby', `${id}-error${hint ? ` ${id}-hint` : ''}`);
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, label), input,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null, error);
  return { wrap, input, error };
}

export function setFieldError(f, message) {
  f.error.textContent = message || '';
  if (message) f.input.setAttribute('aria-invalid', 'true');
  else f.input.removeAttribute('aria-invalid');
}

export function progressBar(label) {
  const bar = h('progress', { max: 100, 'aria-label': label });
  const text = h('span', { class: 'muted' }, label);
  const wrap = h('div', { class: 'progress' }, bar, text);
  return {
    wrap,
    set(done, total, what) {
      if (total) { bar.max = total; bar.value = done; } else bar.removeAttribute('value');
      text.textContent = `${what || label}${total ? ` ${bytes(done)} / ${bytes(total)}` : ''}`;
    },
  };
}
