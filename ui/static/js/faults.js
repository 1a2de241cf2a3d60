// The faults page: SMTP fault-injection rules with hit counts (add, remove,
// an on/off switch for all) and the SMTP session log below them.

import * as api from './api.js';
import { h, clear, icon } from './dom.js';
import { relativeDate, fullDate } from './format.js';
import { toast, confirmDialog } from './ui.js';

const STAGES = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'data', 'message'];
const COLS = ['Stage', 'Mail', 'Action', 'Chance', 'Hits', ''];

/**
 * renderFaults loads rules and sessions into pane. When current() turns
 * false while loading (the user went elsewhere), nothing is rendered.
 */
export async function renderFaults(pane, current = () => true) {
  let data, sessions;
  try {
    data = await api.faults();
    sessions = await api.smtpSessions({ limit: 50 }).catch((e) => (e.status === 404 ? null : Promise.reject(e)));
  } catch (err) {
    if (!current()) return;
    clear(pane);
    pane.appendChild(h('section', { class: 'relay faults', 'aria-labelledby': 'faults-title' },
      h('h2', { id: 'faults-title', class: 'page-title' }, 'Faults'),
      h('p', { class: 'error-box', role: 'alert' }, 'Could not load the fault rules: ' + err.message + '.')));
    return;
  }
  if (!current()) return;
  const reload = () => renderFaults(pane, current);
  const rules = (data && data.faults) || [];
  clear(pane);
  const sw = h('input', { type: 'checkbox', id: 'faults-on', checked: !!data.enabled });
  sw.addEventListener('change', async () => {
    try { await api.setFaultsEnabled(sw.checked); toast(sw.checked ? 'Faults on' : 'Faults off'); } catch (e) { toast(e.message, 'error'); sw.checked = !sw.checked; }
  });
  const clearAll = h('button', { type: 'button', class: 'btn small ghost danger-text', disabled: !rules.length }, icon('trash'), h('span', null, 'Remove all'));
  clearAll.addEventListener('click', async () => {
    if (!await confirmDialog('Remove every rule?', 'SMTP goes back to accepting everything.', 'Remove all')) return;
    try { await api.clearFaults(); reload(); } catch (e) { toast(e.message, 'error'); }
  });
  const section = h('section', { class: 'relay faults', 'aria-labelledby': 'faults-title' },
    h('div', { class: 'page-head' },
      h('h2', { id: 'faults-title', class: 'page-title' }, 'Faults'),
      h('label', { class: 'switch', for: 'faults-on' }, sw, h('span', null, 'Rules on')),
      clearAll),
    h('p', { class: 'muted small' }, 'Make the SMTP server refuse, stall, hang up, greylist or throttle, then see what the app did in the session log below.'));
  if (!rules.length) {
    section.appendChild(h('p', { class: 'empty' }, 'No rules: SMTP accepts everything.'));
  } else {
    const tbody = h('tbody');
    for (const r of rules) {
      const rm = h('button', { type: 'button', class: 'btn small ghost danger-text', 'aria-label': 'Remove rule ' + r.id }, icon('trash'), h('span', null, 'Remove'));
      rm.addEventListener('click', async () => {
        try { await api.removeFault(r.id); reload(); } catch (e) { toast(e.message, 'error'); }
      });
      const mail = [r.from ? 'from ' + r.from : '', r.to ? 'to ' + r.to : ''].filter(Boolean).join(', ') || 'any';
      tbody.appendChild(h('tr', { dataset: { id: r.id } },
        h('td', { 'data-label': COLS[0] }, r.stage, r.origin ? h('div', { class: 'muted small' }, r.origin) : null),
        h('td', { 'data-label': COLS[1] }, mail),
        h('td', { 'data-label': COLS[2] }, describe(r)),
        h('td', { class: 'num', 'data-label': COLS[3] }, r.probability === undefined ? '100%' : Math.round(r.probability * 1000) / 10 + '%',
          r.times ? h('div', { class: 'muted small' }, r.times + ' times') : null),
        h('td', { class: 'num', 'data-label': COLS[4] }, String(r.hits || 0)),
        h('td', { class: 'actions', 'data-label': COLS[5] }, rm)));
    }
    section.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'relay-table' },
      h('thead', null, h('tr', null, COLS.map((t) => h('th', { scope: 'col' }, t)))), tbody)));
  }
  section.appendChild(addForm(reload));
  section.appendChild(sessionLog(sessions));
  pane.appendChild(section);
}

function describe(r) {
  const parts = [];
  if (r.delay) parts.push('delay ' + r.delay);
  if (r.bandwidth) parts.push(r.bandwidth + (r.bandwidth_max ? '–' + r.bandwidth_max : '') + ' B/s');
  if (r.reply) parts.push(r.reply);
  if (r.disconnect) parts.push('disconnect');
  if (r.greylist) parts.push('greylist ' + r.greylist);
  if (r.rate) parts.push('rate ' + r.rate.messages + '/' + r.rate.per);
  return parts.join('; ');
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

function addForm(onAdded) {
  const stage = h('select', { name: 'stage' }, STAGES.map((s) => h('option', { value: s, selected: s === 'rcpt' }, s)));
  const from = h('input', { name: 'from', placeholder: '*@app.test' });
  const to = h('input', { name: 'to', placeholder: '*@bounce.test' });
  const action = h('select', { name: 'action' }, ['reply', 'delay', 'disconnect', 'greylist', 'rate', 'bandwidth'].map((a) => h('option', { value: a }, a)));
  const value = h('input', { name: 'value', value: '451 4.7.1 Try again later' });
  const prob = h('input', { name: 'probability', type: 'number', min: '0', max: '1', step: '0.01', placeholder: '1' });
  const times = h('input', { name: 'times', type: 'number', min: '0', step: '1', placeholder: 'unlimited' });
  const hints = { reply: '451 4.7.1 Try again later', delay: '3s', disconnect: '', greylist: '30s', rate: '10/1m', bandwidth: '512' };
  action.addEventListener('change', () => { value.value = hints[action.value]; value.disabled = action.value === 'disconnect'; });
  const err = h('p', { class: 'error-box', role: 'alert', hidden: true });
  const form = h('form', { class: 'fault-form', 'aria-label': 'Add a fault rule' },
    h('h3', null, 'Add a rule'),
    h('div', { class: 'fault-fields' }, field('Stage', stage), field('From', from), field('To', to), field('Action', action),
      field('Value', value), field('Chance (0–1)', prob), field('Times', times)),
    err,
    h('button', { type: 'submit', class: 'btn primary small' }, 'Add rule'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = { stage: stage.value };
    if (from.value) r.from = from.value;
    if (to.value) r.to = to.value;
    if (prob.value !== '') r.probability = Number(prob.value);
    if (times.value !== '') r.times = Number(times.value);
    const v = value.value.trim();
    switch (action.value) {
      case 'reply': r.reply = v; break;
      case 'delay': r.delay = v; break;
      case 'disconnect': r.disconnect = true; break;
      case 'greylist': r.greylist = v; break;
      case 'rate': { const [n, per] = v.split('/'); r.rate = { messages: Number(n), per: per || '' }; break; }
      case 'bandwidth': r.bandwidth = Number(v); break;
    }
    try {
      await api.addFault(r);
      toast('Rule added');
      onAdded();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  return form;
}

function sessionLog(data) {
  const box = h('div', { class: 'session-log' }, h('h3', null, 'SMTP sessions'));
  if (!data) {
    box.appendChild(h('p', { class: 'muted' }, 'The session log is off (--smtp-log-sessions 0).'));
    return box;
  }
  const ss = data.sessions || [];
  if (!ss.length) {
    box.appendChild(h('p', { class: 'muted' }, 'No SMTP sessions yet.'));
    return box;
  }
  for (const s of ss) {
    const env = [s.from && s.from.length ? 'from ' + s.from.join(', ') : '', s.to && s.to.length ? 'to ' + s.to.join(', ') : ''].filter(Boolean).join(' ');
    const lines = h('ol', { class: 'transcript' }, (s.lines || []).map((l) =>
      h('li', { class: 'dir-' + (l.dir === 'C' ? 'c' : l.dir === 'S' ? 's' : 'note') + (l.fault ? ' fault' : ''), title: fullDate(l.at) },
        h('span', { class: 'dir' }, l.dir === 'C' ? 'C:' : l.dir === 'S' ? 'S:' : '--'), ' ', l.text, l.fault ? h('span', { class: 'badge-fault' }, 'fault') : null)));
    if (s.dropped) lines.appendChild(h('li', { class: 'muted' }, s.dropped + ' more lines not kept'));
    box.appendChild(h('details', { class: 'session' + (s.faults ? ' has-fault' : '') },
      h('summary', null,
        h('time', { datetime: s.started, title: fullDate(s.started) }, relativeDate(s.started)), ' ',
        h('strong', null, s.client), ' ', env,
        s.faults ? h('span', { class: 'badge-fault' }, s.faults + (s.faults === 1 ? ' fault' : ' faults')) : null,
        s.ended ? null : h('span', { class: 'muted small' }, ' open')),
      lines));
  }
  return box;
}
