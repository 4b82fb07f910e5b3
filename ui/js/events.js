// SPDX-License-Identifier: Apache-2.0
// The event log: what /1.0/events told this page since it opened, newest
// first, filtered by type.
import { eventLog, onEvent } from './api.js';
import { h } from './dom.js';

function describe(ev) {
  const m = ev.metadata || {};
  if (ev.type === 'lifecycle') return `${m.action} ${m.source}${m.context && m.context.observed ? ' (observed)' : ''}`;
  if (ev.type === 'operation') return `${m.description}: ${m.status}${m.err ? ` (${m.err})` : ''}`;
  return JSON.stringify(m);
}

export function renderEvents(main) {
  const list = h('ol', { class: 'events', id: 'event-list', 'aria-live': 'polite' });
  const type = h('select', { id: 'event-type' },
    h('option', { value: '' }, 'all'), h('option', { value: 'lifecycle' }, 'lifecycle'), h('option', { value: 'operation' }, 'operation'));
  const item = (ev) => h('li', { 'data-type': ev.type },
    h('time', { datetime: ev.timestamp }, new Date(ev.timestamp).toLocaleTimeString()), ' ',
    h('span', { class: `badge t-${ev.type}` }, ev.type), ' ', describe(ev));
  function paint() {
    const shown = eventLog.filter((e) => !type.value || e.type === type.value).slice(-500).reverse();
    list.replaceChildren(...(shown.length ? shown.map(item) : [h('li', { class: 'muted' }, 'No events since this page opened.')]));
  }
  type.addEventListener('change', paint);
  main.replaceChildren(h('h1', {}, 'Events'),
    h('div', { class: 'row' }, h('label', { for: 'event-type' }, 'Type'), type), list);
  paint();
  return onEvent(paint);
}
