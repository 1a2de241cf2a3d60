// The message view: header, actions, attachments and tabs
// (HTML in a sandboxed iframe, text, headers, raw source).

import * as api from './api.js';
import { h, clear, replace, icon } from './dom.js';
import { fullDate, relativeDate, size, addrFull, addrName, initials, hue } from './format.js';
import { buildSrcdoc } from './mailframe.js';
import { toast, modal, errorBox } from './ui.js';
import { renderChecks } from './checks.js';
import { tagEditor } from './tags.js';

const allowRemote = new Set(); // message ids whose remote images the user allowed
let preferredTab = 'html';

/**
 * renderMessage fills pane with the message view.
 * ctx: {mailbox, backHref, seen, onToggleSeen(msg, seen), onDelete(msg), replyHref, forwardHref}
 */
export function renderMessage(pane, msg, ctx) {
  clear(pane);
  const article = h('article', { class: 'message', 'aria-labelledby': 'msg-subject', dataset: { id: msg.id } });

  // Toolbar.
  const seen = ctx.seen;
  const seenBtn = h('button', { type: 'button', class: 'btn ghost', id: 'btn-seen', 'aria-keyshortcuts': 'u' },
    icon(seen ? 'mail' : 'mailOpen'), h('span', null, seen ? 'Mark unread' : 'Mark read'));
  seenBtn.addEventListener('click', () => ctx.onToggleSeen(msg, !seenBtn.dataset.seen || seenBtn.dataset.seen === 'false'));
  seenBtn.dataset.seen = String(!!seen);
  const delBtn = h('button', { type: 'button', class: 'btn ghost danger-text', id: 'btn-delete', 'aria-keyshortcuts': 'Delete' },
    icon('trash'), h('span', null, 'Delete'));
  delBtn.addEventListener('click', () => ctx.onDelete(msg));
  const releaseBtn = h('button', { type: 'button', class: 'btn ghost', id: 'btn-release' }, icon('send'), h('span', null, 'Release'));
  releaseBtn.addEventListener('click', () => releaseDialog(msg));
  const toolbar = h('div', { class: 'msg-toolbar', role: 'toolbar', 'aria-label': 'Message actions' },
    h('a', { class: 'btn ghost only-narrow', href: ctx.backHref, id: 'btn-back' }, icon('back'), h('span', null, 'Back')),
    h('a', { class: 'btn ghost', href: ctx.replyHref, id: 'btn-reply', 'aria-keyshortcuts': 'r' }, icon('reply'), h('span', null, 'Reply')),
    h('a', { class: 'btn ghost', href: ctx.forwardHref, id: 'btn-forward', 'aria-keyshortcuts': 'f' }, icon('forward'), h('span', null, 'Forward')),
    seenBtn, delBtn,
    h('span', { class: 'spacer' }),
    releaseBtn,
    h('a', { class: 'btn ghost', href: api.rawURL(msg.id), download: emlName(msg), id: 'btn-eml' }, icon('download'), h('span', null, '.eml')),
  );

  // Header.
  const from = msg.from || {};
  const avatar = h('span', { class: 'avatar large', 'aria-hidden': 'true' }, initials(from));
  avatar.style.setProperty('--h', hue(from.address || ''));
  const when = msg.date || msg.received_at;
  const timeEl = h('time', { datetime: when, title: fullDate(when), class: 'msg-date' }, fullDate(when) + ' (' + relativeDate(when) + ')');
  const rows = [];
  const addRow = (label, value) => { if (value) rows.push(h('dt', null, label), h('dd', null, value)); };
  addRow('To', addrRow((msg.to || []).map(addrFull)));
  addRow('Cc', addrRow((msg.cc || []).map(addrFull)));
  addRow('Bcc', addrRow((msg.bcc || []).map(addrFull)));
  addRow('Mailboxes', addrRow(msg.mailboxes || []));
  if (msg.envelope && msg.envelope.mail_from !== undefined) addRow('Envelope from', msg.envelope.mail_from || '<>');
  addRow('Size', size(msg.size));
  rows.push(h('dt', null, 'Tags'), h('dd', null, tagEditor(msg, ctx.onTags)));
  const head = h('header', { class: 'msg-head' },
    h('h2', { id: 'msg-subject', class: 'msg-subject' }, msg.subject || '(no subject)'),
    h('div', { class: 'msg-from' }, avatar,
      h('div', { class: 'msg-from-text' },
        h('div', null, h('strong', { class: 'from-name' }, addrName(from) || '(no sender)'),
          from.name && from.address ? h('span', { class: 'muted from-addr' }, ' <' + from.address + '>') : null),
        timeEl)),
    h('dl', { class: 'msg-addrs' }, rows));

  // Attachments.
  // Images the HTML shows (cid:) are part of the body, not attachments,
  // whatever their Content-Disposition says: several mailers mark them
  // "attachment".
  const shown = cidRefs(msg.html);
  const atts = (msg.attachments || []).filter((a) =>
    !(a.content_id && shown.has(a.content_id.replace(/^<|>$/g, '').toLowerCase())));
  let attList = null;
  if (atts.length) {
    attList = h('ul', { class: 'attachments', 'aria-label': 'Attachments' },
      atts.map((a) => h('li', null,
        h('a', { class: 'attachment', href: api.partURL(msg.id, a.part), download: a.filename || ('part-' + a.part), title: a.content_type || '' },
          icon('paperclip'),
          h('span', { class: 'att-name' }, a.filename || '(unnamed ' + (a.content_type || 'part') + ')'),
          h('span', { class: 'att-size muted' }, size(a.size) + (a.inline ? ' · inline' : '')),
          h('span', { class: 'visually-hidden' }, ', download')))));
  }

  // Tabs.
  const tabs = [];
  if (msg.html) tabs.push(['html', 'HTML']);
  tabs.push(['text', 'Text'], ['headers', 'Headers'], ['raw', 'Raw'], ['checks', 'Checks']);
  let current = tabs.some(([k]) => k === preferredTab) ? preferredTab : tabs[0][0];
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Message format' });
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'msg-panel', tabindex: '0' });
  const tabEls = {};
  const select = (key, focus) => {
    current = key;
    for (const [k, el] of Object.entries(tabEls)) {
      const on = k === key;
      el.setAttribute('aria-selected', String(on));
      el.tabIndex = on ? 0 : -1;
      if (on) {
        panel.setAttribute('aria-labelledby', el.id);
        if (focus) el.focus();
      }
    }
    panel.dataset.tab = key;
    renderTab(panel, key, msg);
  };
  tabs.forEach(([key, label], i) => {
    const t = h('button', { type: 'button', role: 'tab', id: 'tab-' + key, 'aria-controls': 'msg-panel', class: 'tab' }, label);
    t.addEventListener('click', () => { preferredTab = key; select(key); });
    t.addEventListener('keydown', (ev) => {
      let j = -1;
      if (ev.key === 'ArrowRight') j = (i + 1) % tabs.length;
      else if (ev.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
      else if (ev.key === 'Home') j = 0;
      else if (ev.key === 'End') j = tabs.length - 1;
      if (j >= 0) { ev.preventDefault(); preferredTab = tabs[j][0]; select(tabs[j][0], true); }
    });
    tabEls[key] = t;
    tablist.appendChild(t);
  });

  // (Element.append would turn a null attList into the text "null".)
  article.append(...[toolbar, head, attList, tablist, panel].filter(Boolean));
  pane.appendChild(article);
  select(current);

  return {
    setSeen(v) {
      seenBtn.dataset.seen = String(v);
      replace(seenBtn, icon(v ? 'mail' : 'mailOpen'), h('span', null, v ? 'Mark unread' : 'Mark read'));
    },
  };
}

const ADDR_SHOWN = 5;

// addrRow joins addresses; a long list shows its first few and a button
// for the rest, so forty recipients do not push the body off screen.
function addrRow(list) {
  list = list.filter(Boolean);
  if (list.length <= ADDR_SHOWN + 1) return list.join(', ');
  const rest = list.length - ADDR_SHOWN;
  const span = h('span', null, list.slice(0, ADDR_SHOWN).join(', '));
  const more = h('button', { type: 'button', class: 'link-btn more-addrs' }, 'and ' + rest + ' more');
  more.addEventListener('click', () => {
    span.textContent = list.join(', ');
    // The button goes away: keep keyboard focus on what it revealed.
    span.tabIndex = -1;
    span.focus();
    more.remove();
  });
  return [span, ' ', more];
}

function renderTab(panel, key, msg) {
  clear(panel);
  switch (key) {
    case 'html': renderHTML(panel, msg); break;
    case 'text':
      panel.appendChild(msg.text
        ? h('pre', { class: 'msg-text' }, linkify(msg.text))
        : h('p', { class: 'muted pad' }, 'This message has no plain-text part.'));
      break;
    case 'headers': renderHeaders(panel, msg); break;
    case 'raw': renderRaw(panel, msg); break;
    case 'checks': renderChecks(panel, msg); break;
  }
}

function renderHTML(panel, msg) {
  const allowed = allowRemote.has(msg.id);
  const { srcdoc, remote } = buildSrcdoc(msg, allowed);
  if (remote && !allowed) {
    const btn = h('button', { type: 'button', class: 'btn small', id: 'btn-remote' }, icon('image'), h('span', null, 'Load remote images'));
    btn.addEventListener('click', () => {
      allowRemote.add(msg.id);
      renderTab(panel, 'html', msg);
    });
    panel.appendChild(h('div', { class: 'banner' },
      h('span', null, 'Remote images are blocked to protect your privacy.'), btn));
  }
  const frame = h('iframe', {
    class: 'msg-frame',
    title: 'HTML body of the message',
    // No allow-scripts, no allow-same-origin: the mail is an opaque,
    // script-less document. Popups let links open in a new tab.
    sandbox: 'allow-popups allow-popups-to-escape-sandbox',
    referrerpolicy: 'no-referrer',
    loading: 'eager',
  });
  frame.addEventListener('load', () => { frame.dataset.loaded = 'true'; });
  frame.srcdoc = srcdoc;
  panel.appendChild(frame);
}

// linkify splits text into text nodes and links for http(s) URLs. Only
// those two schemes become links; they open in a new tab without opener.
function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"'()]+[^\s<>"'().,;:!?]/gi;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer' }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function renderHeaders(panel, msg) {
  const tbody = h('tbody');
  const headers = msg.headers || {};
  for (const name of Object.keys(headers)) {
    const vals = Array.isArray(headers[name]) ? headers[name] : [headers[name]];
    for (const v of vals) tbody.appendChild(h('tr', null, h('th', { scope: 'row' }, name), h('td', null, String(v))));
  }
  panel.appendChild(h('table', { class: 'headers-table' },
    h('caption', { class: 'visually-hidden' }, 'Message headers'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Header'), h('th', { scope: 'col' }, 'Value'))),
    tbody));
}

// RAW_SHOWN is how much source the Raw tab shows: a 30 MB message as one
// text node would stall the page, and the .eml download has all of it.
const RAW_SHOWN = 1 << 20;

async function renderRaw(panel, msg) {
  const pre = h('pre', { class: 'msg-raw', 'aria-busy': 'true' }, 'Loading…');
  panel.appendChild(pre);
  try {
    const { text, truncated } = await api.raw(msg.id, RAW_SHOWN);
    pre.textContent = text;
    pre.removeAttribute('aria-busy');
    if (truncated) {
      const note = h('p', { class: 'banner raw-more' },
        h('span', null, 'Showing the first ' + size(RAW_SHOWN) + ' of ' + size(msg.size) + '.'),
        h('a', { class: 'btn small', href: api.rawURL(msg.id), download: emlName(msg) }, icon('download'), h('span', null, 'Download the whole .eml')));
      panel.insertBefore(note, pre);
    }
  } catch (err) {
    errorBox(panel, err);
  }
}

// cidRefs returns the lower-cased Content-IDs that html references as cid:.
function cidRefs(html) {
  const out = new Set();
  const re = /cid:([^"'\s)>]+)/gi;
  let m;
  while ((m = re.exec(html || ''))) {
    let v = m[1];
    try { v = decodeURIComponent(v); } catch { /* keep as is */ }
    out.add(v.replace(/^<|>$/g, '').toLowerCase());
  }
  return out;
}

function emlName(msg) {
  const base = (msg.subject || 'message').replace(/[^\p{L}\p{N} ._-]+/gu, '').trim().slice(0, 60) || 'message';
  return base + '.eml';
}

/** releaseDialog asks for addresses and puts the message on the relay queue. */
export async function releaseDialog(msg) {
  const input = h('input', { id: 'release-to', type: 'text', name: 'to', placeholder: 'someone@real.example, other@real.example', autocomplete: 'off', required: true });
  const err = h('p', { class: 'error-text', role: 'alert' });
  await modal({
    title: 'Release message',
    body: [
      h('p', { class: 'muted' }, 'Deliver a copy of “', msg.subject || '(no subject)', '” to real addresses through the relay.'),
      h('label', { for: 'release-to' }, 'Recipients'),
      input, err,
    ],
    initialFocus: input,
    buttons: [{ label: 'Cancel', value: 'cancel' }, { label: 'Release', value: 'ok', primary: true }],
    onSubmit: async () => {
      const to = input.value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
      if (!to.length) { err.textContent = 'Enter at least one address.'; return false; }
      try {
        await api.release(msg.id, to);
        toast('Queued for delivery to ' + to.join(', '));
        return true;
      } catch (e) {
        err.textContent = e.message;
        return false;
      }
    },
  });
}
