// The Checks tab: HTML/CSS support per mail client, links, spam score,
// authentication and bulk-sender rules, each fetched on demand from
// /api/v1/messages/{id}/checks/… and rendered with textContent only.

import * as api from './api.js';
import { h, clear } from './dom.js';
import { errorBox } from './ui.js';

/** renderChecks fills panel with one section per check. */
export function renderChecks(panel, msg) {
  clear(panel);
  const wrap = h('div', { class: 'checks' });
  panel.appendChild(wrap);
  section(wrap, 'check-html', 'HTML compatibility', () => api.check(msg.id, 'html'), renderHTMLCheck);
  section(wrap, 'check-bulk', 'Bulk-sender rules', () => api.check(msg.id, 'bulk'), renderBulk);
  section(wrap, 'check-auth', 'Authentication', () => api.check(msg.id, 'auth'), renderAuth);
  section(wrap, 'check-spam', 'Spam score', () => api.check(msg.id, 'spam'), renderSpam);
  // Links reach out to the network: only when asked.
  section(wrap, 'check-links', 'Links', () => api.check(msg.id, 'links'), renderLinks, true);
}

function section(parent, id, title, load, render, manual) {
  const body = h('div', { class: 'check-body' });
  const sec = h('section', { class: 'check', id, 'aria-labelledby': id + '-title' },
    h('h3', { id: id + '-title', class: 'check-title' }, title), body);
  parent.appendChild(sec);
  const run = async () => {
    clear(body);
    body.setAttribute('aria-busy', 'true');
    body.appendChild(h('p', { class: 'muted' }, 'Checking…'));
    try {
      const res = await load();
      clear(body);
      render(body, res);
    } catch (err) {
      clear(body);
      errorBox(body, err);
    }
    body.removeAttribute('aria-busy');
  };
  if (manual) {
    const btn = h('button', { type: 'button', class: 'btn small', id: id + '-run' }, 'Check links');
    btn.addEventListener('click', run);
    body.appendChild(btn);
  } else {
    run();
  }
}

function chip(ok, text, warn) {
  return h('span', { class: 'chip ' + (ok ? 'ok' : warn ? 'warn' : 'bad') }, text);
}

const pct = (x) => (Math.round(x * 10) / 10) + '%';

function renderHTMLCheck(body, r) {
  if (!r.has_html) {
    body.appendChild(h('p', { class: 'muted' }, 'This message has no HTML part.'));
    return;
  }
  body.appendChild(h('p', { class: 'check-summary' },
    chip(r.score.supported >= 90, pct(r.score.supported) + ' supported', r.score.supported >= 70),
    ' ', r.findings.length + ' feature(s) with limited support, ' + r.nodes + ' elements.'));
  if (r.families && r.families.length) {
    body.appendChild(h('ul', { class: 'family-scores', 'aria-label': 'Support per client family' },
      r.families.map((f) => h('li', null, chip(f.supported >= 90, f.name + ' ' + pct(f.supported), f.supported >= 70)))));
  }
  const list = h('ul', { class: 'findings' });
  for (const f of r.findings) {
    const clients = h('ul', { class: 'clients' }, (f.clients || []).map((c) => h('li', null,
      chip(false, c.support, c.support !== 'no'), ' ',
      c.family_name + ' ' + c.platform_name + ' (' + c.version + ')',
      (c.notes && c.notes.length) ? h('span', { class: 'muted' }, ' — ' + c.notes.join(' ')) : null)));
    list.appendChild(h('li', { class: 'finding', dataset: { slug: f.slug } },
      h('details', null,
        h('summary', null, h('strong', null, f.title), ' ',
          h('span', { class: 'muted' }, f.category + ' · used ' + f.found + '× · ' + pct(f.score.supported) + ' supported')),
        clients,
        h('a', { href: f.url, target: '_blank', rel: 'noopener noreferrer' }, 'caniemail.com'))));
  }
  body.appendChild(list);
  body.appendChild(h('p', { class: 'muted small' }, 'Data: caniemail.com (MIT), ' + r.data_source + '.'));
}

function renderLinks(body, r) {
  body.appendChild(h('p', { class: 'check-summary' },
    chip(r.errors === 0, r.errors === 0 ? 'all good' : r.errors + ' broken'), ' ', r.links.length + ' URL(s) checked.'));
  body.appendChild(h('ul', { class: 'links' }, r.links.map((l) => h('li', { class: 'link-row' },
    chip(l.ok, l.status_code ? String(l.status_code) : 'error', l.refused), ' ',
    h('span', { class: 'muted' }, l.kind + ' '), h('span', { class: 'link-url' }, l.url),
    h('span', { class: 'muted' }, ' ' + (l.status || '') + (l.location ? ' → ' + l.location : ''))))));
}

function renderSpam(body, r) {
  if (r.error) {
    body.appendChild(h('p', null, chip(false, 'not checked', true), ' ', r.error));
    return;
  }
  body.appendChild(h('p', { class: 'check-summary' },
    chip(!r.is_spam, r.score + ' / ' + r.threshold), ' ', r.is_spam ? 'SpamAssassin calls this spam.' : 'Not spam.'));
  body.appendChild(h('table', { class: 'headers-table' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Score'), h('th', { scope: 'col' }, 'Rule'), h('th', { scope: 'col' }, 'Description'))),
    h('tbody', null, (r.rules || []).map((x) => h('tr', null, h('td', null, String(x.score)), h('th', { scope: 'row' }, x.name), h('td', null, x.description))))));
}

function renderAuth(body, r) {
  const rows = [];
  for (const d of r.dkim || []) {
    rows.push(h('li', null, chip(d.result === 'pass', 'DKIM ' + d.result), ' d=' + d.domain + ' s=' + d.selector,
      h('span', { class: 'muted' }, ' covers ' + (d.headers || []).join(', ') + (d.error ? ' — ' + d.error : ''))));
  }
  if (!(r.dkim || []).length) rows.push(h('li', null, chip(false, 'DKIM none', true), ' no signature'));
  rows.push(h('li', null, chip(r.spf.result === 'pass', 'SPF ' + r.spf.result, r.spf.result === 'none'), ' ' + (r.spf.domain || ''),
    h('span', { class: 'muted' }, r.spf.reason ? ' — ' + r.spf.reason : '')));
  rows.push(h('li', null, chip(r.dmarc.result === 'pass', 'DMARC ' + r.dmarc.result, r.dmarc.result === 'none'), ' ' + (r.dmarc.domain || ''),
    h('span', { class: 'muted' }, (r.dmarc.policy ? ' p=' + r.dmarc.policy : '') + (r.dmarc.reason ? ' — ' + r.dmarc.reason : ''))));
  body.appendChild(h('ul', { class: 'auth-results' }, rows));
}

function renderBulk(body, r) {
  body.appendChild(h('ul', { class: 'bulk-rules' }, r.rules.map((x) => h('li', { dataset: { rule: x.id } },
    chip(x.pass, x.pass ? 'pass' : 'fail'), ' ', h('strong', null, x.title),
    h('span', { class: 'muted' }, ' — ' + x.reason)))));
}
