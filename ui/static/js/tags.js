// Tags: chips for list rows and the message view, the editor of one
// message's tags, and the sidebar's tag filter. Tags are plain text; they
// never become markup.
import * as api from './api.js';
import { h, clear } from './dom.js';
import { toast } from './ui.js';

const VALID = /^[a-zA-Z0-9 ._@-]{1,100}$/;

/** tagChips renders a message's tags as small chips (null when none). */
export function tagChips(tags) {
  if (!tags || !tags.length) return null;
  return h('span', { class: 'tag-chips' }, tags.map((t) => h('span', { class: 'tag-chip' }, t)));
}

/** searchHref is the list of mail with one tag. */
export function tagHref(tag) {
  return '#/search/' + encodeURIComponent('tag:"' + tag + '"');
}

/**
 * tagEditor shows msg's tags with a remove button each and a field to add
 * one; changes go to PUT /messages/{id}/tags, then onChange runs.
 */
export function tagEditor(msg, onChange) {
  const box = h('div', { class: 'tag-editor', id: 'tag-editor' });
  const save = async (tags) => {
    try {
      const res = await api.setTags(msg.id, tags);
      msg.tags = (res && res.tags) || [];
      draw();
      if (onChange) onChange();
    } catch (err) {
      toast('Could not change tags: ' + err.message, 'error');
    }
  };
  const draw = () => {
    clear(box);
    for (const t of msg.tags || []) {
      const rm = h('button', { type: 'button', class: 'tag-remove', 'aria-label': 'Remove tag ' + t, title: 'Remove tag' }, '×');
      rm.addEventListener('click', () => save((msg.tags || []).filter((x) => x !== t)));
      box.appendChild(h('span', { class: 'tag-chip' }, h('a', { href: tagHref(t) }, t), rm));
    }
    const input = h('input', { type: 'text', class: 'tag-input', id: 'tag-input', maxlength: '100', placeholder: 'Add tag', 'aria-label': 'Add tag' });
    const form = h('form', { class: 'tag-add' }, input);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      if (!VALID.test(t)) {
        toast('Tags use letters, digits, spaces and - . _ @ (at most 100).', 'error');
        return;
      }
      save([...(msg.tags || []), t]);
    });
    box.appendChild(form);
  };
  draw();
  return box;
}

/** renderTagNav fills the sidebar's tag list; current is the tag shown. */
export function renderTagNav(ul, heading, tags, current) {
  clear(ul);
  heading.hidden = !tags.length;
  for (const t of tags) {
    const a = h('a', { class: 'nav-item', href: tagHref(t), dataset: { tag: t } }, h('span', { class: 'tag-dot', 'aria-hidden': 'true' }), h('span', { class: 'nav-label' }, t));
    if (current && current.toLowerCase() === t.toLowerCase()) a.setAttribute('aria-current', 'page');
    ul.appendChild(h('li', null, a));
  }
}
