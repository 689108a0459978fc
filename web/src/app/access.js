// Share links, the public flag's link and API keys: the calls behind the
// share page and the sharing settings. The collections are found by their
// fixed ids (a host app may have renamed them).
import { pb } from './api.js';
import { url } from './router.js';

const SHARES = 'pocketlytics_shares';
const KEYS = 'pocketlytics_api_keys';

// shareURL is the address of a share link (or of a public site's page).
export const shareURL = (tokenOrSiteId) => location.origin + url(`/share/${tokenOrSiteId}`);

export const shares = {
  list: (siteId) => pb.collection(SHARES).getFullList({ filter: pb.filter('site = {:id}', { id: siteId }), sort: '-created' }),
  create: (data) => pb.collection(SHARES).create(data),
  remove: (id) => pb.collection(SHARES).delete(id),
};

// API keys are the signed-in user's; the create response holds the key, once.
export const apiKeys = {
  // A user has few keys: they are filtered here.
  list: (siteId) => pb.collection(KEYS).getFullList({ sort: '-created' }).then((keys) => keys.filter((k) => (k.sites || []).includes(siteId))),
  create: (data) => pb.collection(KEYS).create(data),
  remove: (id) => pb.collection(KEYS).delete(id),
};

// shareInfo returns what a link opens: {site: {id, name, timezone}, live,
// password, expires} or {locked: true} until the password's proof is given.
export const shareInfo = (token, proof) =>
  pb.send(`/api/analytics/share/${encodeURIComponent(token)}`, { query: proof ? { proof } : {} });

// unlockShare trades the password for the proof sent with every request.
export const unlockShare = (token, password) =>
  pb.send(`/api/analytics/share/${encodeURIComponent(token)}/unlock`, { method: 'POST', body: { password } }).then((r) => r.proof);
