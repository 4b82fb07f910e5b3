// SPDX-License-Identifier: Apache-2.0
// The create form: what POST /1.0/instances takes.  A refused request's
// error is shown by the field its "path" names.
import { api, get, waitOperation } from './api.js';
import { field, h, setFieldError, toast } from './dom.js';

// the API's JSON path of a field -> the form's field
function fieldForPath(path, fields) {
  if (!path) return null;
  if (path === 'name') return fields.name;
  if (path.startsWith('source')) return fields.image;
  if (path === 'type' || path === 'kernel' || path === 'initrd') return fields.kind;
  if (path.includes('limits.cpu')) return fields.cpus;
  if (path.includes('limits.memory')) return fields.memory;
  if (path.includes('root.size')) return fields.disk;
  if (path.startsWith('networks') || path === 'no_network') return fields.networks;
  if (path.startsWith('ports')) return fields.ports;
  if (path.startsWith('command')) return fields.command;
  if (path.startsWith('environment')) return fields.env;
  return null;
}

export function renderCreate(main, navigate) {
  const fields = {};
  const images = h('datalist', { id: 'image-list' });
  fields.name = field('Name', h('input', { id: 'c-name', name: 'name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_][A-Za-z0-9_.\\-]*' }));
  fields.image = field('Image', h('input', { id: 'c-image', name: 'image', list: 'image-list', value: 'busybox', required: true }),
    'a name from the image store, e.g. busybox');
  const kindSel = h('select', { id: 'c-kind', name: 'kind' },
    h('option', { value: 'container' }, 'Container'), h('option', { value: 'vm' }, 'Virtual machine'));
  fields.kind = field('Kind', kindSel);
  fields.cpus = field('CPUs', h('input', { id: 'c-cpus', name: 'cpus', inputmode: 'numeric', placeholder: 'no limit' }));
  fields.memory = field('Memory', h('input', { id: 'c-memory', name: 'memory', placeholder: 'e.g. 512M' }));
  fields.disk = field('Disk size', h('input', { id: 'c-disk', name: 'disk', placeholder: 'e.g. 2G (VMs)' }));
  const nets = h('fieldset', { class: 'checks', id: 'networks' }, h('legend', {}, 'Networks'));
  fields.networks = { wrap: nets, input: nets, error: h('p', { class: 'field-error', role: 'alert' }) };
  nets.append(fields.networks.error);
  fields.ports = field('Port forwards', h('textarea', { id: 'c-ports', name: 'ports', rows: 2, placeholder: '8080:80/tcp, one per line' }));
  fields.command = field('Command', h('input', { id: 'c-command', name: 'command', placeholder: 'the image\'s default' }),
    'words separated by spaces');
  fields.env = field('Environment', h('textarea', { id: 'c-env', name: 'env', rows: 2, placeholder: 'KEY=value, one per line' }));
  const general = h('p', { class: 'form-error', role: 'alert', id: 'create-error' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'create-submit' }, 'Create and start');
  const status = h('div', { id: 'create-status', role: 'status' });
  const form = h('form', { class: 'form', id: 'create-form', novalidate: true },
    general,
    h('div', { class: 'cols' }, fields.name.wrap, fields.image.wrap, fields.kind.wrap),
    h('div', { class: 'cols' }, fields.cpus.wrap, fields.memory.wrap, fields.disk.wrap),
    nets, h('div', { class: 'cols' }, fields.ports.wrap, fields.command.wrap, fields.env.wrap),
    h('div', { class: 'row end' }, h('a', { href: '#/instances', class: 'button quiet' }, 'Cancel'), submit),
    status);
  main.replaceChildren(h('h1', {}, 'Create an instance'), images, form);

  get('/1.0/images?recursion=1').then((list) => {
    for (const i of list) for (const n of i.names) images.append(h('option', { value: n }));
  }).catch(() => {});
  get('/1.0/networks?recursion=1').then((list) => {
    const none = h('input', { type: 'checkbox', name: 'no_network', id: 'net-none' });
    for (const n of list) {
      const id = `net-${n.name}`;
      nets.insertBefore(h('div', { class: 'check' },
        h('input', { type: 'checkbox', name: 'network', value: n.name, id }),
        h('label', { for: id }, `${n.name} `, h('span', { class: 'muted' }, `${n.subnet} ${n.mode}`))), fields.networks.error);
    }
    nets.insertBefore(h('div', { class: 'check' }, none, h('label', { for: 'net-none' }, 'no network')), fields.networks.error);
  }).catch(() => {});

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const f of Object.values(fields)) setFieldError(f, '');
    general.textContent = '';
    const v = (f) => f.input.value.trim();
    const lines = (f) => v(f).split('\n').map((s) => s.trim()).filter(Boolean);
    const body = { name: v(fields.name), source: { type: 'image', image: v(fields.image) } };
    if (kindSel.value === 'vm') body.type = 'vm';
    const config = {};
    if (v(fields.cpus)) config['limits.cpu'] = /^\d+$/.test(v(fields.cpus)) ? Number(v(fields.cpus)) : v(fields.cpus);
    if (v(fields.memory)) config['limits.memory'] = v(fields.memory);
    if (v(fields.disk)) config['root.size'] = v(fields.disk);
    if (Object.keys(config).length) body.config = config;
    const chosen = [...nets.querySelectorAll('input[name=network]:checked')].map((i) => i.value);
    if (chosen.length) body.networks = chosen;
    if (nets.querySelector('#net-none:checked')) body.no_network = true;
    if (lines(fields.ports).length) body.ports = lines(fields.ports);
    if (v(fields.command)) body.command = v(fields.command).split(/\s+/);
    if (lines(fields.env).length) {
      body.environment = Object.fromEntries(lines(fields.env).map((l) => {
        const i = l.indexOf('=');
        return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)];
      }));
    }
    submit.disabled = true;
    status.textContent = 'Creating…';
    try {
      const { operation } = await api('POST', '/1.0/instances', body);
      toast(`Creating ${body.name}…`);
      navigate(`#/instance/${encodeURIComponent(body.name)}`);
      waitOperation(operation).then(() => toast(`${body.name} is running`, 'ok'))
        .catch((err) => toast(`${body.name}: ${err.message}`, 'error'));
    } catch (err) {
      status.textContent = '';
      submit.disabled = false;
      const f = fieldForPath(err.path, fields);
      if (f) { setFieldError(f, err.message); f.input.focus(); } else general.textContent = err.message;
    }
  });
  fields.name.input.focus();
}
