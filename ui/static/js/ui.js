// Small shared UI pieces: toasts, modal dialogs (no native alert/confirm).

import { h, clear } from './dom.js';

let toastTimer = 0;

/** toast shows a short status message; kind: 'info' | 'error'. */
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = 'toast ' + kind;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 3500);
}

/**
 * modal opens a <dialog> with a title, body nodes and buttons.
 * buttons: [{label, value, primary, danger}]; resolves with the chosen value
 * (or null when dismissed). onSubmit(value) may return false to keep it open.
 */
export function modal({ title, body = [], buttons, onSubmit, initialFocus }) {
  return new Promise((resolve) => {
    const titleId = 'dlg-title-' + Math.random().toString(36).slice(2);
    const form = h('form', { method: 'dialog', class: 'dialog-form' });
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      form);
    const actions = h('div', { class: 'dialog-actions' });
    for (const b of buttons) {
      actions.appendChild(h('button', {
        type: 'submit', value: b.value,
        class: 'btn' + (b.primary ? ' primary' : '') + (b.danger ? ' danger' : ''),
      }, b.label));
    }
    form.append(h('h2', { id: titleId }, title), h('div', { class: 'dialog-body' }, body), actions);
    let result = null;
    form.addEventListener('submit', async (ev) => {
      const value = ev.submitter ? ev.submitter.value : '';
      if (value && value !== 'cancel' && onSubmit) {
        ev.preventDefault();
        const ok = await onSubmit(value);
        if (ok === false) return;
        result = value;
        dlg.close();
        return;
      }
      result = value || null;
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result === 'cancel' ? null : result);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    if (initialFocus) initialFocus.focus();
  });
}

/** confirmDialog asks a yes/no question; resolves true when confirmed. */
export async function confirmDialog(title, text, okLabel = 'Delete') {
  const v = await modal({
    title,
    body: [h('p', null, text)],
    buttons: [{ label: 'Cancel', value: 'cancel' }, { label: okLabel, value: 'ok', danger: true }],
  });
  return v === 'ok';
}

/** setBusy marks a region busy for assistive tech. */
export function setBusy(el, busy) {
  if (busy) el.setAttribute('aria-busy', 'true');
  else el.removeAttribute('aria-busy');
}

/** errorBox renders an error message into el. */
export function errorBox(el, err) {
  clear(el);
  el.appendChild(h('div', { class: 'error-box', role: 'alert' }, String(err && err.message || err)));
}
