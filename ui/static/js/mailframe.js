// Renders a message's HTML body for a sandboxed iframe.
//
// The HTML is parsed with DOMParser into an inert document (no scripts run,
// nothing loads), adjusted, serialised, and handed to an iframe through
// srcdoc. The iframe is sandboxed without allow-scripts and without
// allow-same-origin, so even markup we miss cannot run script or reach this
// page. A Content-Security-Policy meta element, first in <head>, blocks all
// remote loads except, when the user allows it for this message, images.

import { partURL } from './api.js';

const REMOTE = /^\s*(https?:)?\/\//i;

/**
 * buildSrcdoc returns {srcdoc, remote}: the iframe document and whether the
 * message references remote images (so the UI can offer to load them).
 * msg: the whole message from GET /messages/{id}.
 */
export function buildSrcdoc(msg, allowRemote) {
  const doc = inertDocument(msg.html || '');
  const origin = location.origin;

  // cid: references -> part URLs.
  const byCid = new Map();
  for (const a of msg.attachments || []) {
    if (a.content_id) byCid.set(a.content_id.replace(/^<|>$/g, '').toLowerCase(), a.part);
  }
  const cidURL = (v) => {
    const m = /^\s*cid:(.+)$/i.exec(v || '');
    if (!m) return null;
    let key = m[1].trim();
    try { key = decodeURIComponent(key); } catch { /* keep as is */ }
    const part = byCid.get(key.replace(/^<|>$/g, '').toLowerCase());
    return part === undefined ? null : origin + partURL(msg.id, part);
  };

  let remote = false;
  for (const el of doc.querySelectorAll('[src], [background], [poster], [srcset]')) {
    for (const attr of ['src', 'background', 'poster']) {
      const v = el.getAttribute(attr);
      if (v == null) continue;
      const c = cidURL(v);
      if (c) el.setAttribute(attr, c);
      else if (REMOTE.test(v)) { remote = true; if (!allowRemote) block(el, attr); }
    }
    if (el.hasAttribute('srcset') && /(https?:)?\/\//i.test(el.getAttribute('srcset'))) { remote = true; if (!allowRemote) block(el, 'srcset'); }
  }
  // Remote images in CSS (inline styles and <style>).
  for (const el of doc.querySelectorAll('[style], style')) {
    const css = el.tagName === 'STYLE' ? el.textContent : el.getAttribute('style');
    if (/url\(\s*['"]?\s*(https?:)?\/\//i.test(css || '')) remote = true;
  }

  // Links open in a new tab, never inside the frame, never with an opener.
  // Only web, mail and phone links stay links: a script or data URL
  // would run or render outside the sandbox once it opens as a popup.
  for (const a of doc.querySelectorAll('a[href], area[href]')) {
    const c = cidURL(a.getAttribute('href'));
    if (c) a.setAttribute('href', c);
    else if (!SAFE_LINK.test(a.getAttribute('href'))) a.removeAttribute('href');
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer');
  }
  // Forms cannot submit (no allow-forms) but make that obvious.
  for (const f of doc.querySelectorAll('form')) f.removeAttribute('action');

  const imgSrc = allowRemote ? "'self' " + origin + ' data: http: https:' : "'self' " + origin + ' data:';
  const csp = "default-src 'none'; img-src " + imgSrc + "; style-src 'unsafe-inline'; font-src data:; media-src 'none'; frame-src 'none'; object-src 'none'; form-action 'none'; base-uri 'none'";

  const head = doc.head || doc.documentElement.insertBefore(doc.createElement('head'), doc.body);
  const meta = doc.createElement('meta');
  meta.setAttribute('http-equiv', 'Content-Security-Policy');
  meta.setAttribute('content', csp);
  const charset = doc.createElement('meta');
  charset.setAttribute('charset', 'utf-8');
  const ref = doc.createElement('meta');
  ref.setAttribute('name', 'referrer');
  ref.setAttribute('content', 'no-referrer');
  const dns = doc.createElement('meta');
  dns.setAttribute('http-equiv', 'x-dns-prefetch-control');
  dns.setAttribute('content', 'off');
  const base = doc.createElement('style');
  base.textContent = 'html{background:#fff;color:#111;color-scheme:light}body{margin:16px;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}img{max-width:100%;height:auto}pre{white-space:pre-wrap}';
  head.prepend(charset, meta, ref, dns, base);

  return { srcdoc: '<!doctype html>' + serialize(doc), remote };
}

// Link targets kept as they are: absolute http(s), mailto and tel URLs,
// fragments, and relative URLs (no scheme before the first / ? or #).
const SAFE_LINK = /^\s*(https?:|mailto:|tel:|#|[^:/?#]*([/?#]|$))/i;

// inertDocument parses html into a document that runs nothing and holds no
// elements or attributes that could run or load anything. The HTML parser
// is not stable: markup such as <math><mtext><mglyph><style> serialises
// into text that parses into new elements (mutation XSS). So the cleaned
// document is serialised and parsed again until nothing changes; a message
// that never settles is shown as its text.
function inertDocument(html) {
  let prev = null;
  for (let i = 0; i < 5; i++) {
    const doc = new DOMParser().parseFromString(html, 'text/html');
    clean(doc);
    const out = serialize(doc);
    if (out === prev) return doc;
    prev = html = out;
  }
  const doc = new DOMParser().parseFromString('<pre></pre>', 'text/html');
  doc.querySelector('pre').textContent = new DOMParser().parseFromString(html, 'text/html').body.textContent;
  return doc;
}

// clean removes what has no business in a rendered message, in place.
function clean(doc) {
  // <link> goes too: remote stylesheets are blocked anyway, and
  // dns-prefetch/preconnect hints would leak that the mail was opened.
  for (const el of doc.querySelectorAll('script, base, object, embed, applet, iframe, frame, frameset, portal, noscript, link, meta[http-equiv]')) {
    el.remove();
  }
  // Event handler attributes never run in the script-less frame; drop them
  // anyway so the markup handed over is inert on its own.
  for (const el of doc.querySelectorAll('*')) {
    for (const name of el.getAttributeNames()) {
      // Event handlers, and ping (a tracking request on click).
      if (/^on/i.test(name) || name.toLowerCase() === 'ping') el.removeAttribute(name);
    }
  }
}

// block takes a remote reference out of an element until the user allows
// remote images. The frame's CSP would stop the load too, but it reports
// each stop as a console error; the CSP stays as the second line.
function block(el, attr) {
  el.setAttribute('data-blocked-' + attr, el.getAttribute(attr));
  el.removeAttribute(attr);
}

// serialize returns the document's markup. getHTML is the HTML serialiser
// (read-only; nothing is parsed into this page); XMLSerializer is the
// fallback for older browsers.
function serialize(doc) {
  const root = doc.documentElement;
  if (typeof root.getHTML === 'function') {
    return '<html>' + root.getHTML() + '</html>';
  }
  return new XMLSerializer().serializeToString(root);
}
