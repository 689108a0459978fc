// Number, duration, place and device formatting for the dashboard.

const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat();

export function num(n) {
  n = Number(n) || 0;
  return Math.abs(n) >= 10000 ? compact.format(n) : whole.format(Math.round(n * 10) / 10);
}

export function percent(n) {
  return `${Math.round((Number(n) || 0) * 10) / 10}%`;
}

export function duration(seconds) {
  const s = Math.round(Number(seconds) || 0);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

let regionNames;
try {
  regionNames = new Intl.DisplayNames(undefined, { type: 'region' });
} catch {
  regionNames = null;
}

export function countryName(code) {
  if (!code) return 'Unknown';
  try {
    return regionNames?.of(code.toUpperCase()) || code;
  } catch {
    return code;
  }
}

// flag turns an ISO 3166-1 alpha-2 code into its regional-indicator emoji.
export function flag(code) {
  if (!code || !/^[a-z]{2}$/i.test(code)) return '🌐';
  return String.fromCodePoint(...[...code.toUpperCase()].map((c) => 0x1f1a5 + c.charCodeAt(0)));
}

export function place(m) {
  const country = m.country ? countryName(m.country) : '';
  return [m.city, country].filter(Boolean).join(', ') || 'Unknown location';
}

const deviceIcons = { desktop: '🖥️', mobile: '📱', tablet: '📲' };
export function deviceIcon(device) {
  return deviceIcons[String(device || '').toLowerCase()] || '💻';
}

export function capitalize(s) {
  s = String(s || '');
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

export function timeAgo(t) {
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

// clockTime is t's time of day, in timeZone (default: the browser's).
export function clockTime(t, timeZone) {
  try {
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', timeZone });
  } catch {
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
}
