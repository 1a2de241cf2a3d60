// Formatting of dates, sizes and addresses for display (text only).

const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;

/** shortDate: compact list date, like mail clients ("14:05", "Mon", "Mar 3", "2024-03-03"). */
export function shortDate(iso, now = new Date()) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const diff = now - d;
  if (diff >= 0 && diff < MIN) return 'now';
  if (diff >= 0 && diff < HOUR) return Math.floor(diff / MIN) + ' min';
  if (sameDay(d, now)) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const y = new Date(now); y.setDate(y.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  if (diff >= 0 && diff < 6 * DAY) return d.toLocaleDateString([], { weekday: 'short' });
  if (d.getFullYear() === now.getFullYear()) return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** relativeDate: "5 minutes ago", "yesterday", "in 3 hours". */
export function relativeDate(iso, now = new Date()) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const diff = d - now;
  const abs = Math.abs(diff);
  if (abs < MIN) return rtf.format(Math.round(diff / 1000), 'second');
  if (abs < HOUR) return rtf.format(Math.round(diff / MIN), 'minute');
  if (abs < DAY) return rtf.format(Math.round(diff / HOUR), 'hour');
  if (abs < 30 * DAY) return rtf.format(Math.round(diff / DAY), 'day');
  if (abs < 365 * DAY) return rtf.format(Math.round(diff / (30 * DAY)), 'month');
  return rtf.format(Math.round(diff / (365 * DAY)), 'year');
}

/** fullDate: locale date and time with weekday. */
export function fullDate(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toLocaleString([], { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** size: human bytes. */
export function size(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '';
  if (n < 1024) return n + ' B';
  const units = ['KB', 'MB', 'GB'];
  let v = n, i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
}

/** addrName: the display name of an address object, or its address. */
export function addrName(a) {
  if (!a) return '';
  return (a.name && a.name.trim()) || a.address || '';
}

/** addrFull: "Name <address>" or just the address. */
export function addrFull(a) {
  if (!a) return '';
  if (a.name && a.name.trim() && a.address) return a.name.trim() + ' <' + a.address + '>';
  return a.address || a.name || '';
}

/** addrList: comma-separated full addresses. */
export function addrList(list) {
  return (list || []).map(addrFull).filter(Boolean).join(', ');
}

/** initials for an avatar. */
export function initials(a) {
  // Without a display name, use the local part: "john.doe@x" -> "JD".
  const name = a && a.name && a.name.trim() ? a.name : ((a && a.address) || '').split('@')[0];
  const s = name.replace(/[^\p{L}\p{N} ._+-]/gu, ' ').replace(/[._+-]/g, ' ').replace(/\d+/g, ' ').trim();
  if (!s) return '?';
  const parts = s.split(/\s+/);
  const first = parts[0][0] || '';
  const second = parts.length > 1 ? parts[parts.length - 1][0] : '';
  return (first + second).toUpperCase();
}

/** hue: a stable colour hue for a string (avatar colour). */
export function hue(str) {
  let x = 0;
  for (const ch of str || '') x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 360;
}

/** number with thousands separators. */
export function num(n) {
  return (n || 0).toLocaleString();
}
