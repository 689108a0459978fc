// Web storage that works where the browser denies it (a share link framed
// on another site, with third-party storage blocked): values then live in
// memory for the page's life.
function open(name) {
  try {
    const s = window[name];
    s.getItem('');
    return s;
  } catch {
    const m = new Map();
    return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
  }
}

export const local = open('localStorage');
export const session = open('sessionStorage');
// available tells whether localStorage itself is usable.
export const available = local instanceof Storage;
