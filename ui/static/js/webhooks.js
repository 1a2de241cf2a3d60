// The webhooks page: deliveries of new-message webhooks with status,
// attempts and last error; retry, drop. Styled as the relay queue.

import * as api from './api.js';
import { h, clear, icon } from './dom.js';
import { relativeDate, fullDate } from './format.js';
import { toast, confirmDialog } from './ui.js';

const COLS = ['Status', 'URL', 'Message', 'Attempts', 'Next attempt', 'Last error', 'Queued', 'Actions'];

/**
 * renderWebhooks loads the newest deliveries into pane. onChange() is
 * called after retry/drop. When current() turns false while loading,
 * nothing is rendered and the result is null; otherwise it is the number
 * of deliveries not yet done.
 */
export async function renderWebhooks(pane, onChange, current = () => true) {
  let data;
  try {
    data = await api.webhooks();
  } catch (err) {
    if (!current()) return null;
    clear(pane);
    pane.appendChild(h('section', { class: 'relay webhooks', 'aria-labelledby': 'webhooks-title' },
      h('h2', { id: 'webhooks-title', class: 'page-title' }, 'Webhooks'),
      h('p', { class: 'error-box', role: 'alert' }, 'Could not load the webhook deliveries: ' + err.message + '.')));
    return null;
  }
  if (!current()) return null;
  const items = (data && data.deliveries) || [];
  const counts = (data && data.counts) || {};
  const pending = (counts.queued || 0) + (counts.sending || 0);
  clear(pane);
  const section = h('section', { class: 'relay webhooks', 'aria-labelledby': 'webhooks-title' },
    h('div', { class: 'page-head' },
      h('h2', { id: 'webhooks-title', class: 'page-title' }, 'Webhooks'),
      h('span', { class: 'muted' }, `${pending} pending · ${counts.delivered || 0} delivered · ${counts.failed || 0} failed`)));
  if (!items.length) {
    section.appendChild(h('p', { class: 'empty' }, data && data.enabled
      ? 'No webhook deliveries yet: each new message is posted to every --webhook-url.'
      : 'Webhooks are off. Start with --webhook-url URL to have every new message posted there.'));
    pane.appendChild(section);
    return pending;
  }
  const tbody = h('tbody');
  for (const d of items) {
    const retry = h('button', { type: 'button', class: 'btn small', 'aria-label': 'Retry webhook ' + d.id }, icon('retry'), h('span', null, 'Retry'));
    retry.disabled = d.status === 'delivered' || d.status === 'sending';
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try { await api.webhookRetry(d.id); toast('Retrying webhook'); onChange(); } catch (e) { toast(e.message, 'error'); retry.disabled = false; }
    });
    const drop = h('button', { type: 'button', class: 'btn small ghost danger-text', 'aria-label': 'Drop webhook ' + d.id }, icon('trash'), h('span', null, 'Drop'));
    drop.addEventListener('click', async () => {
      if (!await confirmDialog('Drop webhook delivery?', 'The message stays in the sandbox; only this webhook delivery is removed.', 'Drop')) return;
      try { await api.webhookDrop(d.id); toast('Webhook delivery dropped'); onChange(); } catch (e) { toast(e.message, 'error'); }
    });
    const status = String(d.status || '');
    tbody.appendChild(h('tr', { dataset: { id: String(d.id) } },
      h('td', { 'data-label': COLS[0] }, h('span', { class: 'status status-' + status.replace(/[^a-z]/gi, '') }, status)),
      h('td', { class: 'link-url', 'data-label': COLS[1] }, d.url || '—'),
      h('td', { 'data-label': COLS[2] }, d.message_id ? h('a', { href: '#/all/message/' + encodeURIComponent(d.message_id), title: 'View message' }, 'View message') : '—'),
      h('td', { class: 'num', 'data-label': COLS[3] }, String(d.attempts ?? 0)),
      h('td', { 'data-label': COLS[4] }, when(d.next_attempt_at)),
      h('td', { class: 'last-error', 'data-label': COLS[5] }, d.last_error || '—'),
      h('td', { 'data-label': COLS[6] }, when(d.queued_at)),
      h('td', { class: 'actions', 'data-label': COLS[7] }, retry, drop)));
  }
  section.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'relay-table' },
    h('thead', null, h('tr', null, COLS.map((t) => h('th', { scope: 'col' }, t)))),
    tbody)));
  if (data.total > items.length) section.appendChild(h('p', { class: 'muted small' }, `The newest ${items.length} of ${data.total}.`));
  pane.appendChild(section);
  return pending;
}

function when(iso) {
  if (!iso || iso.startsWith('0001-')) return '—';
  return h('time', { datetime: iso, title: fullDate(iso) }, relativeDate(iso));
}
