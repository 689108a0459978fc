// Subscribes to live topics with the PocketBase JS SDK, as the dashboard
// does, and prints every message as one JSON line {topic, msg}. Driven by
// realtime/sdk_test.go; not a node --test file.
//
// Usage: node live-sdk.mjs URL TOKEN SITE [SITE...]
// The first site is subscribed with options (an option-suffixed key).
// Prints {"ready":true} once subscribed; exits when stdin closes.
import { EventSource } from 'eventsource';
import PocketBase from 'pocketbase';

globalThis.EventSource ??= EventSource; // Node 20 has none

const [url, token, ...sites] = process.argv.slice(2);
const pb = new PocketBase(url);
if (token) {
  pb.authStore.save(token, null);
}

const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

for (const [i, site] of sites.entries()) {
  const topic = 'analytics/live/' + site;
  const options = i === 0 ? { headers: { 'X-Dashboard': 'e2e' } } : undefined;
  await pb.realtime.subscribe(topic, (msg) => print({ topic, msg }), options);
}
print({ ready: true });

process.stdin.on('end', () => {
  pb.realtime.unsubscribe().finally(() => process.exit(0));
});
process.stdin.resume();
