// mailsandbox web UI: router, mailbox sidebar, message list, live updates,
// keyboard shortcuts. Talks only to /api/v1 (REST) and /api/v1/events (SSE).

import * as api from './api.js';
import { h, clear, replace, icon } from './dom.js';
import { shortDate, fullDate, addrName, initials, hue, num } from './format.js';
import { renderMessage } from './message.js';
import { renderCompose } from './compose.js';
import { renderRelay } from './relay.js';
import { tagChips, renderTagNav } from './tags.js';
import { renderFaults } from './faults.js';
import { renderWebhooks } from './webhooks.js';
import { toast, confirmDialog, errorBox, setBusy, modal } from './ui.js';

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

const state = {
  route: null,        // parsed current route
  listKey: '',        // scope+offset of the loaded list
  list: [],           // summaries on the current page
  total: 0,
  totalExact: true,   // false: a search matched more than the server counts
  offset: 0,
  mailboxes: [],
  msg: null,          // open message (whole)
  msgView: null,      // handle from renderMessage
  listSeq: 0,         // guards against out-of-order list responses
  msgSeq: 0,
  viewSeq: 0,         // bumps on every route change; stale async views drop out
  // The last id of each loaded page, keyed by the page after it: "next"
  // asks for the mail after what was shown (before=<id>), as fast however
  // deep, and new mail does not shift it.
  cursors: new Map(),
};

// ---------------------------------------------------------------- routing

/**
 * Routes (URL fragment):
 *   #/all[/message/ID][?o=OFFSET]
 *   #/mailbox/ADDR[/message/ID][?o=OFFSET]
 *   #/search/QUERY[/message/ID][?o=OFFSET]
 *   #/relay
 *   #/faults
 *   #/webhooks
 *   #/compose[?reply=ID|forward=ID]
 */
function parseRoute(hash) {
  let s = (hash || '').replace(/^#\/?/, '');
  let query = new URLSearchParams();
  const q = s.indexOf('?');
  if (q >= 0) { query = new URLSearchParams(s.slice(q + 1)); s = s.slice(0, q); }
  const parts = s.split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const offset = Math.max(0, parseInt(query.get('o') || '0', 10) || 0);
  const r = { page: 'list', scope: { type: 'all' }, id: null, offset, query };
  let rest = parts.slice(1);
  switch (parts[0]) {
    case 'mailbox': r.scope = { type: 'mailbox', address: (parts[1] || '').toLowerCase() }; rest = parts.slice(2); break;
    case 'search': r.scope = { type: 'search', q: parts[1] || '' }; rest = parts.slice(2); break;
    case 'relay': r.page = 'relay'; rest = []; break;
    case 'faults': r.page = 'faults'; rest = []; break;
    case 'webhooks': r.page = 'webhooks'; rest = []; break;
    case 'compose': r.page = 'compose'; rest = []; break;
    default: break; // all
  }
  if (rest[0] === 'message' && rest[1]) r.id = rest[1];
  return r;
}

function scopeHref(scope, offset = 0) {
  let base;
  if (scope.type === 'mailbox') base = '#/mailbox/' + enc(scope.address);
  else if (scope.type === 'search') base = '#/search/' + enc(scope.q);
  else base = '#/all';
  return offset ? base + '?o=' + offset : base;
}

function messageHref(scope, id, offset = 0) {
  const s = scopeHref(scope);
  return s + '/message/' + enc(id) + (offset ? '?o=' + offset : '');
}

function scopeKey(scope, offset) {
  return scope.type + '\u0000' + (scope.address || scope.q || '') + '\u0000' + offset;
}

// The last list scope stays visible beside relay and compose pages.
let lastScope = { type: 'all' };
let lastOffset = 0;

async function onRoute() {
  const r = parseRoute(location.hash);
  state.route = r;
  state.viewSeq++;
  const layout = $('layout');
  layout.dataset.page = r.page;
  layout.dataset.pane = (r.page !== 'list' || r.id) ? 'view' : 'list';
  closeNav();

  if (r.page === 'list') { lastScope = r.scope; lastOffset = r.offset; }
  const scope = r.page === 'list' ? r.scope : lastScope;
  const offset = r.page === 'list' ? r.offset : lastOffset;
  if (document.activeElement !== $('search-input')) $('search-input').value = scope.type === 'search' ? scope.q : '';
  highlightNav(r, scope);

  const key = scopeKey(scope, offset);
  if (key !== state.listKey) loadList(scope, offset);
  else renderList();

  if (r.page === 'relay') { state.msg = null; showRelay(); }
  else if (r.page === 'faults') { state.msg = null; showFaults(); }
  else if (r.page === 'webhooks') { state.msg = null; showWebhooks(); }
  else if (r.page === 'compose') { state.msg = null; showCompose(r); }
  else if (r.id) { if (!state.msg || state.msg.id !== r.id || !$('view-pane').querySelector('.message')) openMessage(r.id); }
  else { state.msg = null; showPlaceholder(); }
}

// ---------------------------------------------------------------- sidebar

async function loadMailboxes() {
  try {
    const data = await api.mailboxes();
    state.mailboxes = (data && data.mailboxes) || [];
  } catch (err) {
    // An unreachable server already has the banner; a toast would repeat it.
    if (err.status !== 0) toast('Could not load mailboxes: ' + err.message, 'error');
    return;
  }
  renderMailboxes();
  loadTags();
}

async function loadTags() {
  let tags = [];
  try { tags = (await api.tags()) || []; } catch { return; }
  const r = state.route || parseRoute(location.hash);
  const cur = r.page === 'list' && r.scope.type === 'search' ? (parseSearch(r.scope.q).tag || null) : null;
  renderTagNav($('tag-list'), $('tags-heading'), Array.isArray(tags) ? tags : [], cur);
}

function renderMailboxes() {
  const ul = $('mailbox-list');
  const r = state.route || parseRoute(location.hash);
  const cur = r.page === 'list' && r.scope.type === 'mailbox' ? r.scope.address : null;
  clear(ul);
  let unread = 0;
  const sorted = [...state.mailboxes].sort((a, b) => a.address.localeCompare(b.address, undefined, { numeric: true }));
  for (const mb of sorted) {
    unread += mb.unread || 0;
    const a = h('a', {
      class: 'nav-item' + (mb.unread ? ' has-unread' : ''),
      href: '#/mailbox/' + enc(mb.address),
      title: mb.address + ' — ' + num(mb.total) + ' messages, ' + num(mb.unread) + ' unread',
      dataset: { address: mb.address },
    }, icon('mail'),
      h('span', { class: 'nav-label' }, mb.address),
      mb.unread ? h('span', { class: 'badge' }, num(mb.unread), h('span', { class: 'visually-hidden' }, ' unread')) : null);
    if (cur === mb.address) a.setAttribute('aria-current', 'page');
    ul.appendChild(h('li', null, a));
  }
  $('mailbox-empty').hidden = sorted.length > 0;
  setBadge($('all-unread'), unread, 'unread');
  document.title = (unread ? '(' + unread + ') ' : '') + 'mailsandbox';
}

// setBadge shows n in a sidebar badge, with a word for screen readers
// ("All mail 3 unread", not "All mail 3"); an empty badge is hidden by CSS.
function setBadge(el, n, what) {
  if (n) replace(el, num(n), h('span', { class: 'visually-hidden' }, ' ' + what));
  else clear(el);
}

function highlightNav(r, scope) {
  $('nav-all').toggleAttribute('aria-current', r.page === 'list' && scope.type === 'all');
  if ($('nav-all').hasAttribute('aria-current')) $('nav-all').setAttribute('aria-current', 'page');
  $('nav-relay').toggleAttribute('aria-current', r.page === 'relay');
  if (r.page === 'relay') $('nav-relay').setAttribute('aria-current', 'page');
  $('nav-faults').toggleAttribute('aria-current', r.page === 'faults');
  if (r.page === 'faults') $('nav-faults').setAttribute('aria-current', 'page');
  $('nav-webhooks').toggleAttribute('aria-current', r.page === 'webhooks');
  if (r.page === 'webhooks') $('nav-webhooks').setAttribute('aria-current', 'page');
  for (const a of $('mailbox-list').querySelectorAll('a')) {
    if (r.page === 'list' && scope.type === 'mailbox' && a.dataset.address === scope.address) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- search

const FILTER_KEYS = new Set(['from', 'to', 'subject', 'text', 'mailbox', 'tag', 'since', 'before']);

/** parseSearch turns "from:alice subject:\"big news\" invoice" into REST filters. */
function parseSearch(q) {
  const f = {};
  const words = [];
  const re = /(\w+):("([^"]*)"|\S+)|"([^"]*)"|(\S+)/g;
  let m;
  while ((m = re.exec(q))) {
    if (m[1] && FILTER_KEYS.has(m[1].toLowerCase())) {
      const k = m[1].toLowerCase();
      const v = m[3] !== undefined ? m[3] : m[2];
      f[k] = f[k] ? f[k] + ' ' + v : v;
    } else {
      words.push(m[4] !== undefined ? m[4] : m[0]);
    }
  }
  if (words.length) f.text = f.text ? f.text + ' ' + words.join(' ') : words.join(' ');
  // since:/before: take a plain date too (local midnight), sent as RFC 3339.
  for (const k of ['since', 'before']) {
    if (f[k] && /^\d{4}-\d{2}-\d{2}$/.test(f[k])) {
      const d = new Date(f[k] + 'T00:00:00');
      if (!isNaN(d)) f[k] = d.toISOString();
    }
  }
  return f;
}

// ---------------------------------------------------------------- list

async function loadList(scope, offset, quiet) {
  const seq = ++state.listSeq;
  const key = scopeKey(scope, offset);
  state.scope = scope;
  state.offset = offset;
  const ul = $('message-list');
  if (!quiet) {
    setBusy(ul, true);
    // The buttons belong to the list on screen, which is not the one
    // loading: paging from it now would follow the wrong list.
    $('page-prev').disabled = true;
    $('page-next').disabled = true;
  }
  let data;
  const filter = scope.type === 'search' ? parseSearch(scope.q) : {};
  // A search with before: (a time) pages by offset: before takes one value.
  const before = offset > 0 && !filter.before ? state.cursors.get(key) : undefined;
  const from = before ? 0 : offset;
  try {
    if (scope.type === 'mailbox') data = await api.mailboxMessages(scope.address, PAGE, from, before);
    else data = await api.search(filter, PAGE, from, before);
  } catch (err) {
    if (seq !== state.listSeq) return;
    setBusy(ul, false);
    // A failed live refresh keeps what is on screen; the connection
    // banner says why it is not updating.
    if (quiet && key === state.listKey) return;
    state.listKey = '';
    state.list = [];
    state.total = 0;
    state.totalExact = true;
    renderList();
    const p = $('list-empty');
    p.classList.add('failed');
    p.textContent = 'Could not load messages: ' + err.message + '.';
    return;
  }
  if (seq !== state.listSeq) return;
  setBusy(ul, false);
  state.listKey = key;
  state.list = (data && data.messages) || [];
  state.total = (data && data.total) || 0;
  state.totalExact = !data || data.total_exact !== false;
  if (state.list.length) state.cursors.set(scopeKey(scope, offset + PAGE), state.list[state.list.length - 1].id);
  state.offset = offset;
  state.scope = scope;
  renderList();
  if (!firstListMarked) {
    firstListMarked = true;
    // For measuring: time from navigation to the first page of messages.
    performance.mark('mailsandbox:list-rendered');
  }
}

let firstListMarked = false;

// hasMore: a page follows the one on screen. A search's total may be a
// lower bound (total_exact false): then a full page says there may be more.
function hasMore() {
  const last = state.offset + state.list.length;
  return state.totalExact ? last < state.total : state.list.length >= PAGE;
}

let renderedSig = '';
let renderedKey = '';

function renderList() {
  const scope = state.scope || { type: 'all' };
  const ul = $('message-list');
  const hadFocus = ul.contains(document.activeElement) ? document.activeElement.dataset.id : null;
  const openId = state.route && state.route.id;
  let title = 'All mail';
  if (scope.type === 'mailbox') title = scope.address;
  else if (scope.type === 'search') title = 'Search results';
  $('list-title').textContent = title;
  $('list-title').title = title;
  const clearBtn = $('list-clear');
  clearBtn.hidden = scope.type === 'search' || state.total === 0;
  clearBtn.textContent = scope.type === 'mailbox' ? 'Empty mailbox' : 'Delete all';

  const first = state.total ? state.offset + 1 : 0;
  const last = state.offset + state.list.length;
  $('list-range').textContent = state.total ? num(first) + '–' + num(last) + ' of ' + num(state.total) + (state.totalExact ? '' : '+') : '';
  $('page-prev').disabled = state.offset <= 0;
  $('page-next').disabled = !hasMore();

  // Live refreshes often return the same page: leave the DOM alone then,
  // so focus, hover and anything the user is about to click stay put.
  const sig = JSON.stringify([scopeKey(scope, state.offset), state.list.map((m) => [m.id, m.seen, m.subject, m.snippet, m.tags])]);
  if (sig === renderedSig && ul.childElementCount === state.list.length) {
    markCurrentInList(openId);
    return;
  }
  renderedSig = sig;
  // Another page or scope starts at its top; a live refresh of the same
  // one keeps the reader's place.
  const key = scopeKey(scope, state.offset);
  if (key !== renderedKey) { renderedKey = key; ul.scrollTop = 0; }
  clear(ul);
  const now = new Date();
  for (const m of state.list) {
    const from = m.from || {};
    const unread = !m.seen;
    const when = m.date || m.received_at;
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(from));
    avatar.style.setProperty('--h', hue(from.address || ''));
    const a = h('a', {
      class: 'msg-item' + (unread ? ' unread' : ''),
      href: messageHref(scope, m.id, state.offset),
      dataset: { id: m.id },
    },
      avatar,
      h('span', { class: 'msg-item-body' },
        h('span', { class: 'row1' },
          h('span', { class: 'from' }, addrName(from) || '(no sender)'),
          m.has_attachments ? h('span', { class: 'clip', title: 'Has attachments' }, icon('paperclip'), h('span', { class: 'visually-hidden' }, 'has attachments')) : null,
          h('time', { datetime: when, title: fullDate(when), class: 'date', dataset: { t: when } }, shortDate(when, now))),
        h('span', { class: 'subject' }, unread ? h('span', { class: 'visually-hidden' }, 'Unread: ') : null, h('span', { class: 'subject-text' }, m.subject || '(no subject)'), tagChips(m.tags)),
        h('span', { class: 'snippet' }, m.snippet || '')));
    if (m.id === openId) a.setAttribute('aria-current', 'true');
    ul.appendChild(h('li', null, a));
  }
  const empty = $('list-empty');
  empty.hidden = state.list.length > 0;
  empty.classList.remove('failed');
  if (scope.type === 'search') {
    replace(empty, 'No messages match ', h('q', null, scope.q), '.',
      h('span', { class: 'hint' }, 'Words search the subject and text; narrow with from:, to:, subject:, mailbox:, tag:, since:2026-01-31 or before:.'));
  } else if (scope.type === 'mailbox') {
    empty.textContent = 'No messages for ' + scope.address + '.';
  } else {
    empty.textContent = 'No messages yet. Mail sent to the SMTP port shows up here at once.';
  }
  if (hadFocus) {
    const el = ul.querySelector('a[data-id="' + CSS.escape(hadFocus) + '"]');
    if (el) el.focus();
  }
}

function markCurrentInList(id) {
  for (const a of $('message-list').querySelectorAll('a.msg-item')) {
    if (a.dataset.id === id) a.setAttribute('aria-current', 'true');
    else a.removeAttribute('aria-current');
  }
}

function setListSeen(id, seen) {
  const item = state.list.find((m) => m.id === id);
  if (item) item.seen = seen;
  const a = $('message-list').querySelector('a[data-id="' + CSS.escape(id) + '"]');
  if (a) {
    a.classList.toggle('unread', !seen);
    const sr = a.querySelector('.subject .visually-hidden');
    if (seen && sr) sr.remove();
    if (!seen && !sr) a.querySelector('.subject').prepend(h('span', { class: 'visually-hidden' }, 'Unread: '));
  }
}

// ---------------------------------------------------------------- message

function currentMailbox() {
  const s = state.scope || {};
  return s.type === 'mailbox' ? s.address : '';
}

async function openMessage(id) {
  const seq = ++state.msgSeq;
  const view = state.viewSeq;
  const pane = $('view-pane');
  markCurrentInList(id);
  setBusy(pane, true);
  let msg;
  try {
    msg = await api.message(id);
  } catch (err) {
    if (seq !== state.msgSeq || view !== state.viewSeq) return;
    setBusy(pane, false);
    state.msg = null;
    messageError(err.status === 404 ? 'This message no longer exists.' : 'Could not load the message: ' + err.message + '.');
    return;
  }
  if (seq !== state.msgSeq || view !== state.viewSeq) return;
  setBusy(pane, false);
  state.msg = msg;
  const scope = state.scope || { type: 'all' };
  const summary = state.list.find((m) => m.id === id);
  const wasSeen = summary ? summary.seen : !!msg.seen;
  state.msgView = renderMessage(pane, msg, {
    seen: true,
    backHref: scopeHref(scope, state.offset),
    replyHref: '#/compose?reply=' + enc(id),
    forwardHref: '#/compose?forward=' + enc(id),
    onToggleSeen: toggleSeen,
    onDelete: deleteMessage,
    onTags: () => { scheduleRefresh(); loadTags(); },
  });
  pane.scrollTop = 0;
  if (!wasSeen) {
    setListSeen(id, true);
    try { await api.setSeen(id, true, currentMailbox() || undefined); } catch (err) { toast('Could not mark as read: ' + err.message, 'error'); }
    scheduleRefresh();
  }
}

async function toggleSeen(msg, seen) {
  try {
    await api.setSeen(msg.id, seen, currentMailbox() || undefined);
  } catch (err) {
    toast(err.message, 'error');
    return;
  }
  setListSeen(msg.id, seen);
  if (state.msgView) state.msgView.setSeen(seen);
  toast(seen ? 'Marked as read' : 'Marked as unread');
  scheduleRefresh();
}

async function deleteMessage(msg) {
  const idx = state.list.findIndex((m) => m.id === msg.id);
  const next = state.list[idx + 1] || state.list[idx - 1];
  try {
    await api.deleteMessage(msg.id);
  } catch (err) {
    toast('Could not delete: ' + err.message, 'error');
    return;
  }
  toast('Message deleted');
  if (idx >= 0) state.list.splice(idx, 1);
  state.total = Math.max(0, state.total - 1);
  state.msg = null;
  const scope = state.scope || { type: 'all' };
  location.hash = next ? messageHref(scope, next.id, state.offset) : scopeHref(scope, state.offset);
  renderList();
  scheduleRefresh();
}

// messageError replaces the message view with text and a way back to the
// list (on a phone the list is hidden while a message is shown).
function messageError(text) {
  const scope = state.scope || { type: 'all' };
  const pane = $('view-pane');
  errorBox(pane, text);
  pane.appendChild(h('p', { class: 'back-link' }, h('a', { href: scopeHref(scope, state.offset), id: 'msg-error-back' }, icon('back'), 'Back to the list')));
}

function showPlaceholder() {
  const pane = $('view-pane');
  if (pane.querySelector('#placeholder')) return;
  clear(pane);
  pane.appendChild(placeholder);
}

async function showRelay() {
  const pane = $('view-pane');
  if (!pane.querySelector('.relay')) {
    clear(pane);
    pane.appendChild(h('p', { class: 'muted pad' }, 'Loading relay queue…'));
  }
  const view = state.viewSeq;
  const pending = await renderRelay(pane, () => refreshRelay(), () => view === state.viewSeq);
  if (pending !== null) setBadge($('relay-count'), pending, 'pending');
}

async function showFaults() {
  const pane = $('view-pane');
  if (!pane.querySelector('.faults')) {
    clear(pane);
    pane.appendChild(h('p', { class: 'muted pad' }, 'Loading fault rules…'));
  }
  const view = state.viewSeq;
  await renderFaults(pane, () => view === state.viewSeq);
}

// New mail adds webhook deliveries: an open Webhooks page reloads a second
// later (by then most have been sent), at most once a second.
let webhooksTimer = 0;
function scheduleWebhooks() {
  if (webhooksTimer || !state.route || state.route.page !== 'webhooks') return;
  webhooksTimer = setTimeout(() => { webhooksTimer = 0; if (state.route && state.route.page === 'webhooks') showWebhooks(); }, 1000);
}

async function showWebhooks() {
  const pane = $('view-pane');
  if (!pane.querySelector('.webhooks')) {
    clear(pane);
    pane.appendChild(h('p', { class: 'muted pad' }, 'Loading webhooks…'));
  }
  const view = state.viewSeq;
  const pending = await renderWebhooks(pane, () => showWebhooks(), () => view === state.viewSeq);
  if (pending !== null) setBadge($('webhooks-count'), pending, 'pending');
}

async function showCompose(r) {
  const pane = $('view-pane');
  const replyId = r.query.get('reply');
  const fwdId = r.query.get('forward');
  const id = replyId || fwdId;
  let source = null;
  if (id) {
    const view = state.viewSeq;
    try { source = await api.message(id); } catch (err) { if (view === state.viewSeq) errorBox(pane, err); return; }
    if (view !== state.viewSeq) return;
  }
  const scope = lastScope;
  renderCompose(pane, {
    mode: replyId ? 'reply' : fwdId ? 'forward' : 'new',
    source,
    mailbox: scope.type === 'mailbox' ? scope.address : '',
    cancelHref: id ? messageHref(scope, id, lastOffset) : scopeHref(scope, lastOffset),
    onSent: (newId) => {
      location.hash = newId ? messageHref({ type: 'all' }, newId) : scopeHref(scope, lastOffset);
    },
  });
}

// ---------------------------------------------------------------- live updates

let refreshTimer = 0;
let refreshRunning = false;
let refreshAgain = false;

/** scheduleRefresh re-fetches mailboxes and the visible list, at most ~3x a second. */
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(runRefresh, 300);
}

async function runRefresh() {
  refreshTimer = 0;
  if (refreshRunning) { refreshAgain = true; return; }
  refreshRunning = true;
  try {
    const scope = state.scope || { type: 'all' };
    await Promise.all([loadMailboxes(), loadList(scope, state.offset, true)]);
  } finally {
    refreshRunning = false;
    if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
  }
}

async function refreshRelay() {
  if (state.route && state.route.page === 'relay') return showRelay();
  try {
    const data = await api.relayQueue();
    // Without a relay destination, Release could only fail: hide it.
    document.body.classList.toggle('relay-off', !!data && data.enabled === false);
    const n = ((data && data.deliveries) || []).filter((d) => !/^(delivered|sent|done)$/i.test(d.status || '')).length;
    setBadge($('relay-count'), n, 'pending');
  } catch { /* relay may be off */ }
}

async function checkOpenMessage() {
  if (!state.msg) return;
  const id = state.msg.id;
  try { await api.message(id); } catch (err) {
    if (err.status === 404 && state.msg && state.msg.id === id) {
      state.msg = null;
      messageError('This message has been deleted.');
    }
  }
}

let offlineTimer = 0;

function connectEvents() {
  const dot = $('live-dot');
  const banner = $('conn-banner');
  const es = new EventSource(api.eventsURL);
  es.addEventListener('open', () => {
    dot.className = 'live-dot on'; dot.title = 'Live updates on';
    clearTimeout(offlineTimer);
    banner.hidden = true;
  });
  es.addEventListener('error', () => {
    dot.className = 'live-dot off'; dot.title = 'Reconnecting…';
    // A blip is not worth a banner; a server that stays away is.
    if (banner.hidden && !offlineTimer) {
      offlineTimer = setTimeout(() => { offlineTimer = 0; if (es.readyState !== EventSource.OPEN) banner.hidden = false; }, 1500);
    }
    // EventSource gives up for good on an HTTP error answer (a proxy's 502,
    // a 503 while the server starts): start a new stream a little later.
    if (es.readyState === EventSource.CLOSED) setTimeout(connectEvents, 3000);
  });
  // Payloads are only hints: the UI re-fetches what it shows.
  es.addEventListener('message', () => { scheduleRefresh(); scheduleWebhooks(); });
  es.addEventListener('deleted', () => { scheduleRefresh(); checkOpenMessage(); });
  es.addEventListener('flags', () => scheduleRefresh());
  es.addEventListener('relay', () => refreshRelay());
  // The server cut us off or restarted its stream: re-read everything.
  es.addEventListener('reset', () => { scheduleRefresh(); refreshRelay(); checkOpenMessage(); });
  // On (re)connect, catch up on anything that arrived while not listening
  // (also between the first page load and the stream opening).
  es.addEventListener('open', () => scheduleRefresh());
}

// ---------------------------------------------------------------- keyboard

function move(delta) {
  const scope = state.scope || { type: 'all' };
  const id = state.route && state.route.id;
  let idx = state.list.findIndex((m) => m.id === id);
  if (idx < 0) idx = delta > 0 ? -1 : state.list.length;
  const j = idx + delta;
  if (j >= 0 && j < state.list.length) {
    location.hash = messageHref(scope, state.list[j].id, state.offset);
    const a = $('message-list').querySelector('a[data-id="' + CSS.escape(state.list[j].id) + '"]');
    if (a) a.scrollIntoView({ block: 'nearest' });
  } else if (j >= state.list.length && hasMore()) {
    pageThenOpen(state.offset + PAGE, 'first');
  } else if (j < 0 && state.offset > 0) {
    pageThenOpen(Math.max(0, state.offset - PAGE), 'last');
  }
}

async function pageThenOpen(offset, which) {
  const scope = state.scope || { type: 'all' };
  await loadList(scope, offset);
  const m = which === 'first' ? state.list[0] : state.list[state.list.length - 1];
  if (m) location.hash = messageHref(scope, m.id, offset);
}

function onKey(ev) {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  const typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  if (ev.key === 'Escape' && t === $('search-input')) { t.blur(); return; }
  if (typing || document.querySelector('dialog[open]')) return;
  const r = state.route || {};
  switch (ev.key) {
    case '/': ev.preventDefault(); $('search-input').focus(); $('search-input').select(); break;
    case 'j': case 'ArrowDown': if (ev.key === 'j' || $('message-list').contains(t)) { ev.preventDefault(); move(1); } break;
    case 'k': case 'ArrowUp': if (ev.key === 'k' || $('message-list').contains(t)) { ev.preventDefault(); move(-1); } break;
    case 'Delete': case '#': if (state.msg && r.page === 'list') { ev.preventDefault(); deleteMessage(state.msg); } break;
    case 'u': if (state.msg && r.page === 'list') { ev.preventDefault(); toggleSeen(state.msg, $('btn-seen').dataset.seen !== 'true'); } break;
    case 'c': ev.preventDefault(); location.hash = '#/compose'; break;
    case 'r': if (state.msg && r.page === 'list') { ev.preventDefault(); location.hash = '#/compose?reply=' + enc(state.msg.id); } break;
    case 'f': if (state.msg && r.page === 'list') { ev.preventDefault(); location.hash = '#/compose?forward=' + enc(state.msg.id); } break;
    case 'Escape': if (r.id) location.hash = scopeHref(state.scope || { type: 'all' }, state.offset); break;
    case '?': ev.preventDefault(); showShortcuts(); break;
  }
}

const SHORTCUTS = [
  [['j', '↓'], 'Next message'],
  [['k', '↑'], 'Previous message'],
  [['/'], 'Search'],
  [['c'], 'Compose'],
  [['r'], 'Reply'],
  [['f'], 'Forward'],
  [['u'], 'Mark read or unread'],
  [['Delete', '#'], 'Delete the message'],
  [['Esc'], 'Back to the list'],
  [['?'], 'This list'],
];

function showShortcuts() {
  modal({
    title: 'Keyboard shortcuts',
    body: [h('table', { class: 'shortcuts' },
      h('tbody', null, SHORTCUTS.map(([keys, what]) => h('tr', null,
        h('td', null, keys.map((k, i) => [i ? ' or ' : '', h('kbd', null, k)])),
        h('td', null, what)))))],
    buttons: [{ label: 'Close', value: 'cancel' }],
  });
}

// ---------------------------------------------------------------- nav drawer (phones)

function closeNav() {
  document.body.classList.remove('nav-open');
  $('nav-toggle').setAttribute('aria-expanded', 'false');
}

// ---------------------------------------------------------------- start

let placeholder;

function start() {
  placeholder = $('placeholder');
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = $('search-input').value.trim();
    location.hash = q ? '#/search/' + enc(q) : '#/all';
    $('message-list').focus();
  });
  $('search-input').addEventListener('search', () => {
    if (!$('search-input').value && state.scope && state.scope.type === 'search') location.hash = '#/all';
  });
  $('page-prev').addEventListener('click', () => {
    location.hash = scopeHref(state.scope || { type: 'all' }, Math.max(0, state.offset - PAGE));
  });
  $('page-next').addEventListener('click', () => {
    const scope = state.scope || { type: 'all' };
    // While another list loads (state.scope and state.offset already name
    // it), the list on screen is not the one "next" would follow: its last
    // message would be the wrong cursor (it skipped or repeated mail).
    if (state.listKey !== scopeKey(scope, state.offset)) return;
    // The next page is what follows the last message on screen, whatever
    // a live refresh did to the cursor map meanwhile.
    if (state.list.length) state.cursors.set(scopeKey(scope, state.offset + PAGE), state.list[state.list.length - 1].id);
    location.hash = scopeHref(scope, state.offset + PAGE);
  });
  $('list-clear').addEventListener('click', async () => {
    const scope = state.scope || { type: 'all' };
    const mb = scope.type === 'mailbox';
    const ok = await confirmDialog(mb ? 'Empty mailbox?' : 'Delete all mail?',
      mb ? 'Every message in ' + scope.address + ' will be deleted.' : 'Every captured message in every mailbox will be deleted.',
      mb ? 'Empty mailbox' : 'Delete all');
    if (!ok) return;
    try {
      if (mb) await api.emptyMailbox(scope.address); else await api.deleteAll();
      toast(mb ? 'Mailbox emptied' : 'All mail deleted');
    } catch (err) { toast(err.message, 'error'); return; }
    location.hash = scopeHref(scope);
    scheduleRefresh();
  });
  $('nav-toggle').addEventListener('click', () => {
    const open = !document.body.classList.contains('nav-open');
    document.body.classList.toggle('nav-open', open);
    $('nav-toggle').setAttribute('aria-expanded', String(open));
    if (open) $('nav-all').focus();
  });
  // Phones: a tap outside the open drawer, or Escape, closes it.
  $('layout').addEventListener('click', (ev) => {
    if (document.body.classList.contains('nav-open') && !$('sidebar').contains(ev.target)) closeNav();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.body.classList.contains('nav-open')) { closeNav(); $('nav-toggle').focus(); }
  });
  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', onRoute);
  // Keep relative dates fresh.
  setInterval(() => {
    const now = new Date();
    for (const t of $('message-list').querySelectorAll('time[data-t]')) t.textContent = shortDate(t.dataset.t, now);
  }, 60e3);

  if (!location.hash) history.replaceState(null, '', '#/all');
  loadMailboxes();
  refreshRelay();
  onRoute();
  connectEvents();
}

start();
