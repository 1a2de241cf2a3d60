// The relay queue page: deliveries with attempts and last errors; retry, drop.

import * as api from './api.js';
import { h, clear, icon } from './dom.js';
import { relativeDate, fullDate } from './format.js';
import { toast, confirmDialog } from './ui.js';

/**
 * renderRelay loads the queue into pane. onChange() is called after
 * retry/drop. When current() turns false while loading (the user went
 * elsewhere), nothing is rendered and the result is null; otherwise it is
 * the number of deliveries not yet done.
 */
export async function renderRelay(pane, onChange, current = () => true) {
  let data;
  try {
    data = await api.relayQueue();
  } catch (err) {
    if (!current()) return null;
    clear(pane);
    pane.appendChild(h('section', { class: 'relay', 'aria-labelledby': 'relay-title' },
      h('h2', { id: 'relay-title', class: 'page-title' }, 'Relay queue'),
      h('p', { class: 'error-box', role: 'alert' }, 'Could not load the relay queue: ' + err.message + '.')));
    return null;
  }
  if (!current()) return null;
  const items = (data && data.deliveries) || [];
  clear(pane);
  const section = h('section', { class: 'relay', 'aria-labelledby': 'relay-title' },
    h('div', { class: 'page-head' },
      h('h2', { id: 'relay-title', class: 'page-title' }, 'Relay queue'),
      h('span', { class: 'muted' }, items.length + (items.length === 1 ? ' delivery' : ' deliveries'))));
  if (!items.length) {
    section.appendChild(h('p', { class: 'empty' }, 'The queue is empty. Release a message, or configure --relay-match, to send mail to real servers.'));
    pane.appendChild(section);
    return 0;
  }
  const tbody = h('tbody');
  for (const d of items) {
    const retry = h('button', { type: 'button', class: 'btn small', 'aria-label': 'Retry delivery ' + d.id }, icon('retry'), h('span', null, 'Retry'));
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try { await api.relayRetry(d.id); toast('Retrying delivery'); onChange(); } catch (e) { toast(e.message, 'error'); retry.disabled = false; }
    });
    const drop = h('button', { type: 'button', class: 'btn small ghost danger-text', 'aria-label': 'Drop delivery ' + d.id }, icon('trash'), h('span', null, 'Drop'));
    drop.addEventListener('click', async () => {
      if (!await confirmDialog('Drop delivery?', 'The message stays in the sandbox; only this delivery is removed from the queue.', 'Drop')) return;
      try { await api.relayDrop(d.id); toast('Delivery dropped'); onChange(); } catch (e) { toast(e.message, 'error'); }
    });
    const status = String(d.status || '');
    // data-label names each cell where phones stack a row into a card.
    tbody.appendChild(h('tr', { dataset: { id: String(d.id) } },
      h('td', { 'data-label': COLS[0] }, h('span', { class: 'status status-' + status.replace(/[^a-z]/gi, '') }, status)),
      h('td', { 'data-label': COLS[1] }, (d.recipients || []).join(', '), h('div', { class: 'muted small' }, 'via ', d.destination || '—'),
        d.message_id ? h('div', { class: 'small' }, h('a', { href: '#/all/message/' + encodeURIComponent(d.message_id), title: 'View message' }, d.subject || 'View message')) : null),
      h('td', { class: 'num', 'data-label': COLS[2] }, String(d.attempts ?? 0)),
      h('td', { 'data-label': COLS[3] }, when(d.next_attempt_at)),
      h('td', { class: 'last-error', 'data-label': COLS[4] }, d.last_error || '—'),
      h('td', { 'data-label': COLS[5] }, when(d.created_at)),
      h('td', { class: 'actions', 'data-label': COLS[6] }, retry, drop)));
  }
  section.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'relay-table' },
    h('thead', null, h('tr', null, COLS.map((t) => h('th', { scope: 'col' }, t)))),
    tbody)));
  pane.appendChild(section);
  return items.filter((d) => !/^(delivered|sent|done)$/i.test(d.status || '')).length;
}

const COLS = ['Status', 'Recipients', 'Attempts', 'Next attempt', 'Last error', 'Queued', 'Actions'];

function when(iso) {
  if (!iso || iso.startsWith('0001-')) return '—';
  return h('time', { datetime: iso, title: fullDate(iso) }, relativeDate(iso));
}
