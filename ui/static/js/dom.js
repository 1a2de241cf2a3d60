// DOM helpers. Everything the UI shows is built with createElement and text
// nodes: mail data never becomes markup in this page.

/**
 * h creates an element. attrs: plain attributes (set with setAttribute),
 * except "class", "dataset" (object), "on" (object of event listeners) and
 * boolean properties (hidden, disabled, checked, selected) set as properties.
 * Children may be strings (become text nodes), nodes, arrays, null/false.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'selected' || k === 'value' || k === 'multiple' || k === 'required') el[k] = v;
      else if (k.startsWith('on')) throw new Error('inline handler attribute not allowed: ' + k);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** append adds children (strings become text nodes) to el. */
export function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

/** clear removes every child of el. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** replace clears el and appends children. */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  reply: ['M9 14 4 9l5-5', 'M4 9h10a6 6 0 0 1 6 6v4'],
  forward: ['m15 14 5-5-5-5', 'M20 9H10a6 6 0 0 0-6 6v4'],
  trash: ['M4 7h16', 'M10 11v6M14 11v6', 'M6 7l1 13h10l1-13', 'M9 7V4h6v3'],
  mail: ['M3 6h18v12H3z', 'm3 7 9 6 9-6'],
  mailOpen: ['M3 10v9h18v-9l-9-6z', 'm3 10 9 6 9-6'],
  send: ['M3 11 21 3l-8 18-2-8z'],
  download: ['M12 4v11', 'm7 10 5 5 5-5', 'M5 20h14'],
  paperclip: ['M20 12.5 12.5 20a5 5 0 0 1-7-7L14 4.5a3.5 3.5 0 0 1 5 5L10.5 18a2 2 0 0 1-3-3L15 7.5'],
  back: ['m15 6-6 6 6 6'],
  image: ['M4 5h16v14H4z', 'm4 16 5-5 4 4 3-3 4 4'],
  retry: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 5v6h-6'],
  x: ['M6 6l12 12M18 6 6 18'],
};

/** icon returns an inline SVG icon (decorative, aria-hidden). */
export function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}
