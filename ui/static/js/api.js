// REST client for /api/v1 (see CONTRACT.md). Every function returns parsed
// JSON or throws an Error whose message is the server's {"error": "..."}.

// Relative to the page, so the UI works under a webroot (--http-webroot,
// Mailpit's MP_WEBROOT) as well as at /.
const BASE = new URL('api/v1', document.baseURI).pathname;
const enc = encodeURIComponent;

async function call(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await get(BASE + path, opts);
  if (!res.ok) {
    let msg = res.status + ' ' + res.statusText;
    try {
      const j = await res.json();
      if (j && typeof j.error === 'string') msg = j.error;
    } catch { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  // DELETE /messages answers Mailpit's text/plain "ok": not JSON.
  if (!(res.headers.get('Content-Type') || '').includes('json')) return null;
  return text ? JSON.parse(text) : null;
}

// get is fetch with a plain-words error when the server does not answer
// (fetch itself only says "Failed to fetch").
async function get(url, opts) {
  try {
    return await fetch(url, opts);
  } catch {
    const err = new Error('the sandbox server does not answer');
    err.status = 0;
    throw err;
  }
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export const mailboxes = () => call('GET', '/mailboxes');
// before is a cursor (a message id): the page after that message.
export const mailboxMessages = (address, limit, offset, before) =>
  call('GET', '/mailboxes/' + enc(address) + '/messages' + qs({ folder: 'INBOX', limit, offset, before }));
export const emptyMailbox = (address) => call('DELETE', '/mailboxes/' + enc(address));
export const search = (filter, limit, offset, before) => call('GET', '/messages/search' + qs({ ...filter, limit, offset, ...(before ? { before } : {}) }));
export const deleteAll = () => call('DELETE', '/messages');
export const message = (id) => call('GET', '/messages/' + enc(id));
export const setSeen = (id, seen, mailbox) => call('PATCH', '/messages/' + enc(id) + qs({ mailbox }), { seen });
export const deleteMessage = (id) => call('DELETE', '/messages/' + enc(id));
export const release = (id, to) => call('POST', '/messages/' + enc(id) + '/release', { to });
export const send = (msg) => call('POST', '/messages', msg);
export const setTags = (id, tags) => call('PUT', '/messages/' + enc(id) + '/tags', { tags });
export const tags = () => call('GET', '/tags'); // Mailpit's route: every tag in use
export const relayQueue = () => call('GET', '/relay/queue');
export const relayRetry = (id) => call('POST', '/relay/queue/' + enc(id) + '/retry');
export const relayDrop = (id) => call('DELETE', '/relay/queue/' + enc(id));
export const faults = () => call('GET', '/faults');
export const addFault = (rule) => call('POST', '/faults', rule);
export const removeFault = (id) => call('DELETE', '/faults/' + enc(id));
export const clearFaults = () => call('DELETE', '/faults');
export const setFaultsEnabled = (enabled) => call('PUT', '/faults/enabled', { enabled });
export const smtpSessions = (filter) => call('GET', '/smtp/sessions' + qs(filter));
export const webhooks = () => call('GET', '/webhooks?limit=200');
export const webhookRetry = (id) => call('POST', '/webhooks/' + enc(id) + '/retry');
export const webhookDrop = (id) => call('DELETE', '/webhooks/' + enc(id));

/** rawURL is the message source (message/rfc822). */
export const rawURL = (id) => BASE + '/messages/' + enc(id) + '/raw';
/** partURL is one attachment or inline part. */
export const partURL = (id, part) => BASE + '/messages/' + enc(id) + '/parts/' + enc(part);
export const eventsURL = BASE + '/events';

/**
 * raw fetches the message source as text: all of it, or with max set, its
 * first max bytes and whether there was more ({text, truncated}).
 */
export async function raw(id, max = Infinity) {
  const res = await get(rawURL(id));
  if (!res.ok) throw new Error('raw source: ' + res.status + ' ' + res.statusText);
  const reader = res.body.getReader();
  const chunks = [];
  let n = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > max) {
      chunks.push(value.subarray(0, max - n));
      truncated = true;
      reader.cancel();
      break;
    }
    chunks.push(value);
    n += value.length;
  }
  // Mail is mostly ASCII; a character cut at the limit becomes U+FFFD.
  const dec = new TextDecoder();
  return { text: chunks.map((c) => dec.decode(c, { stream: true })).join('') + dec.decode(), truncated };
}

/** partBase64 fetches a part and returns its bytes base64-encoded (for forwarding). */
export async function partBase64(id, part) {
  const res = await get(partURL(id, part));
  if (!res.ok) throw new Error('attachment: ' + res.status + ' ' + res.statusText);
  return bytesToBase64(new Uint8Array(await res.arrayBuffer()));
}

export function bytesToBase64(bytes) {
  let bin = '';
  const CH = 0x8000;
  for (let i = 0; i < bytes.length; i += CH) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + CH));
  return btoa(bin);
}
export const check = (id, name, params) => call('GET', '/messages/' + enc(id) + '/checks/' + name + qs(params));
