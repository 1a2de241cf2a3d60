// Compose, reply and forward. Messages go through POST /api/v1/messages, so
// they are captured (and relayed where a rule matches) like any SMTP mail.

import * as api from './api.js';
import { h, clear, icon } from './dom.js';
import { addrFull, fullDate, size } from './format.js';
import { toast } from './ui.js';

const FROM_KEY = 'mailsandbox.from';

/**
 * renderCompose fills pane with a compose form.
 * opts: {mode: 'new'|'reply'|'forward', source: whole message or null,
 *        mailbox: current mailbox or '', onSent(id), cancelHref}
 */
export function renderCompose(pane, opts) {
  clear(pane);
  const src = opts.source;
  const init = initialValues(opts.mode, src, opts.mailbox);
  const field = (id, label, value, type = 'text', extra = {}) => {
    const input = h('input', { id, name: id.replace('compose-', ''), type, value: value || '', autocomplete: 'off', ...extra });
    return [h('label', { for: id }, label), input];
  };
  const [fromL, fromI] = field('compose-from', 'From', init.from, 'text', { required: true });
  const [toL, toI] = field('compose-to', 'To', init.to, 'text', { required: true, placeholder: 'name@example.com, …' });
  const [ccL, ccI] = field('compose-cc', 'Cc', init.cc);
  const [bccL, bccI] = field('compose-bcc', 'Bcc', '');
  const [subjL, subjI] = field('compose-subject', 'Subject', init.subject);
  const body = h('textarea', { id: 'compose-body', name: 'text', rows: '14' });
  body.value = init.text;
  const files = h('input', { id: 'compose-files', type: 'file', multiple: true });
  const fwdList = h('ul', { class: 'attachments' });
  const forwarded = opts.mode === 'forward' && src ? (src.attachments || []) : [];
  const keep = new Set(forwarded.map((a) => a.part));
  for (const a of forwarded) {
    const cb = h('input', { type: 'checkbox', checked: true, id: 'fwd-' + a.part });
    cb.addEventListener('change', () => { if (cb.checked) keep.add(a.part); else keep.delete(a.part); });
    fwdList.appendChild(h('li', { class: 'attachment' }, cb, h('label', { for: 'fwd-' + a.part }, icon('paperclip'),
      h('span', { class: 'att-name' }, a.filename || 'part ' + a.part), h('span', { class: 'att-size muted' }, size(a.size)))));
  }
  const status = h('p', { class: 'error-text', role: 'alert' });
  const sendBtn = h('button', { type: 'submit', class: 'btn primary', id: 'compose-send' }, icon('send'), h('span', null, 'Send'));
  const title = { new: 'New message', reply: 'Reply', forward: 'Forward' }[opts.mode] || 'New message';
  const form = h('form', { class: 'compose', id: 'compose-form', 'aria-labelledby': 'compose-title', novalidate: true },
    h('div', { class: 'compose-head' },
      h('h2', { id: 'compose-title' }, title),
      h('a', { class: 'icon-btn', href: opts.cancelHref, 'aria-label': 'Discard and close' }, icon('x'))),
    h('div', { class: 'compose-grid' }, fromL, fromI, toL, toI, ccL, ccI, bccL, bccI, subjL, subjI),
    h('label', { for: 'compose-body', class: 'visually-hidden' }, 'Message text'),
    body,
    forwarded.length ? h('fieldset', { class: 'fwd' }, h('legend', null, 'Forwarded attachments'), fwdList) : null,
    h('div', { class: 'compose-files' }, h('label', { for: 'compose-files' }, 'Attach files'), files),
    status,
    h('div', { class: 'compose-actions' }, sendBtn, h('a', { class: 'btn ghost', href: opts.cancelHref }, 'Discard')));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    status.textContent = '';
    const list = (s) => s.split(/[,;]+/).map((x) => x.trim()).filter(Boolean);
    const msg = {
      from: fromI.value.trim(),
      to: list(toI.value),
      cc: list(ccI.value),
      bcc: list(bccI.value),
      subject: subjI.value,
      text: body.value,
      attachments: [],
    };
    if (!msg.from) { status.textContent = 'Enter a sender.'; fromI.focus(); return; }
    if (!msg.to.length && !msg.cc.length && !msg.bcc.length) { status.textContent = 'Enter at least one recipient.'; toI.focus(); return; }
    sendBtn.disabled = true;
    try {
      for (const a of forwarded) {
        if (!keep.has(a.part)) continue;
        msg.attachments.push({ filename: a.filename || 'part-' + a.part, content_type: a.content_type || 'application/octet-stream', content_base64: await api.partBase64(src.id, a.part) });
      }
      for (const f of files.files) {
        msg.attachments.push({ filename: f.name, content_type: f.type || 'application/octet-stream', content_base64: api.bytesToBase64(new Uint8Array(await f.arrayBuffer())) });
      }
      if (!msg.attachments.length) delete msg.attachments;
      if (!msg.cc.length) delete msg.cc;
      if (!msg.bcc.length) delete msg.bcc;
      const res = await api.send(msg);
      try { localStorage.setItem(FROM_KEY, msg.from); } catch { /* storage off */ }
      toast('Message sent');
      opts.onSent(res && res.id);
    } catch (err) {
      status.textContent = 'Could not send: ' + err.message;
    } finally {
      sendBtn.disabled = false;
    }
  });

  pane.appendChild(form);
  (opts.mode === 'reply' ? body : (init.to ? subjI : toI)).focus();
  if (opts.mode === 'reply') body.setSelectionRange(0, 0);
}

function initialValues(mode, src, mailbox) {
  let from = '';
  try { from = localStorage.getItem(FROM_KEY) || ''; } catch { /* storage off */ }
  const v = { from: from || mailbox || 'me@sandbox.test', to: '', cc: '', subject: '', text: '' };
  if (!src) return v;
  const me = mailbox || (src.mailboxes && src.mailboxes[0]) || '';
  if (me) v.from = me;
  const subj = src.subject || '';
  const quoted = (src.text || '').split('\n').map((l) => '> ' + l).join('\n');
  const fromS = addrFull(src.from);
  const when = fullDate(src.date || src.received_at);
  if (mode === 'reply') {
    const replyTo = header(src, 'Reply-To');
    v.to = replyTo || fromS;
    v.subject = /^re:/i.test(subj) ? subj : 'Re: ' + subj;
    v.text = '\n\nOn ' + when + ', ' + fromS + ' wrote:\n' + quoted + '\n';
  } else if (mode === 'forward') {
    v.subject = /^fwd?:/i.test(subj) ? subj : 'Fwd: ' + subj;
    v.text = '\n\n---------- Forwarded message ----------\n' +
      'From: ' + fromS + '\nDate: ' + when + '\nSubject: ' + subj + '\nTo: ' + (src.to || []).map(addrFull).join(', ') + '\n\n' + (src.text || '') + '\n';
  }
  return v;
}

function header(msg, name) {
  const hs = msg.headers || {};
  for (const k of Object.keys(hs)) {
    if (k.toLowerCase() === name.toLowerCase()) {
      const v = hs[k];
      return Array.isArray(v) ? v[0] : v;
    }
  }
  return '';
}
