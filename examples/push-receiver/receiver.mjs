// receiver.mjs - a webhook receiver for eventbus push delivery.
//
// Every POST is verified with the official Standard Webhooks library
// (npm `standardwebhooks`): a bad or missing signature, or a timestamp
// more than 5 minutes off, answers 401 (eventbus nacks and retries it);
// a good one is handled and answered 204 (eventbus acks it). The body is
// one event, or a JSON array of them when the group's push.batch > 1.
// Deliveries are at-least-once: the receiver dedupes on the event ids
// (the webhook-id header is the first event's id, the same on every
// attempt).
//
//   node receiver.mjs --secret whsec_... [--port 0] [--host 127.0.0.1]
//                     [--cert FILE --key FILE] [--hold-ms N]
//
// With --cert and --key it serves HTTPS, offering HTTP/2 and HTTP/1.1 by
// ALPN (eventbusd speaks HTTP/2 when offered over TLS; give it the CA with
// --push-ca-file); without them, plain HTTP/1.1. --hold-ms answers each
// POST after N ms (to see many POSTs at once; for tests).
//
// It prints "listening on PORT" once it accepts. GET /stats answers what
// it saw: {received, events, unique, duplicates, bad_signatures, http2,
// http1, connections, h2_connections, most_at_once}, and with ?ids=1 the unique event ids
// too (what tests/integration/test_push.py reads). The secret can also
// come from EB_PUSH_SECRET.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createSecureServer } from "node:http2";
import { Webhook } from "standardwebhooks";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const secret = opt("secret", process.env.EB_PUSH_SECRET);
if (!secret) {
  console.error("usage: node receiver.mjs --secret whsec_... [--port N] [--host H]");
  process.exit(2);
}
const wh = new Webhook(secret);
const seen = new Set();
const stats = { received: 0, events: 0, unique: 0, duplicates: 0, bad_signatures: 0,
                http2: 0, http1: 0, connections: 0, h2_connections: 0, most_at_once: 0 };
const holdMs = Number(opt("hold-ms", "0"));
let atOnce = 0; // POSTs received and not yet answered

function handle(events) {
  for (const ev of events) {
    stats.events++;
    if (seen.has(ev.id)) stats.duplicates++;
    else {
      seen.add(ev.id);
      stats.unique++;
    }
    // ... the service's own work with ev.type and ev.data goes here ...
  }
}

function onRequest(req, res) {
  const chunks = [];
  let aborted = false;
  req.on("data", (c) => chunks.push(c));
  req.on("aborted", () => { aborted = true; }); // the client gave up on it (or the connection died)
  req.on("end", () => {
    if (aborted) return;
    if (req.method === "GET" && req.url.startsWith("/stats")) {
      const body = { ...stats };
      if (req.url.includes("ids=1")) body.ids = [...seen];
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(body));
    }
    if (req.method !== "POST") {
      res.writeHead(405);
      return res.end();
    }
    stats.received++;
    if (req.httpVersion === "2.0") stats.http2++;
    else stats.http1++;
    const payload = Buffer.concat(chunks).toString("utf8");
    let body;
    try {
      body = wh.verify(payload, req.headers); // throws on a bad signature or timestamp
    } catch (e) {
      stats.bad_signatures++;
      res.writeHead(401, { "content-type": "text/plain" });
      return res.end(`signature: ${e.message}`);
    }
    handle(Array.isArray(body) ? body : [body]);
    stats.most_at_once = Math.max(stats.most_at_once, ++atOnce);
    const answer = () => {
      atOnce--;
      res.writeHead(204);
      res.end();
    };
    if (holdMs > 0) setTimeout(answer, holdMs);
    else answer();
  });
}

const cert = opt("cert"), key = opt("key");
const server = cert && key
  ? createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true },
                       onRequest)
  : createServer(onRequest);
server.on("connection", () => stats.connections++); // TCP connections accepted
server.on("secureConnection", (s) => s.alpnProtocol === "h2" && stats.h2_connections++);
server.keepAliveTimeout = 60000; // HTTP/1.1 (over TLS too)
server.listen(Number(opt("port", "8471")), opt("host", "127.0.0.1"), () => {
  console.log(`listening on ${server.address().port}`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref(); // HTTP/2 sessions eventbusd keeps open
});
