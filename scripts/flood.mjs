// An anonymous visitor abusing the public embed key, as an attacker would: it opens as many
// sessions as it can and holds them idle, then floods one of them with questions
// (conversation.item.create + response.create pairs, 80 a second). Prints what the server let through.
// Usage: node scripts/flood.mjs BASE_URL EMBED_KEY ORIGIN [SOCKETS=500] [QUESTIONS=300]
//          [PROBE_KEY PROBE_ORIGIN]  (another dealership's key: can it start a session meanwhile?)
// (run from the repository root; `ws` comes from web/node_modules). See docs/DEPLOYMENT.md.
import { createRequire } from "node:module";

const require = createRequire(new URL("../web/package.json", import.meta.url));
const WebSocket = require("ws");

const [base, key, origin, socketsArg = "500", questionsArg = "300", probeKey, probeOrigin] = process.argv.slice(2);
if (!base || !key || !origin) {
  console.error("usage: node scripts/flood.mjs BASE_URL EMBED_KEY ORIGIN [SOCKETS] [QUESTIONS]");
  process.exit(2);
}
const sockets = Number(socketsArg);
const questions = Number(questionsArg);
const refusals = {};
const held = [];

async function open() {
  const res = await fetch(`${base}/v1/sessions`, {
    method: "POST",
    headers: { "x-embed-key": key, origin, "content-type": "application/json" },
    body: "{}",
  });
  if (res.status !== 201) {
    const code = `${res.status} ${(await res.json().catch(() => ({})))?.error?.code ?? ""}`.trim();
    refusals[code] = (refusals[code] ?? 0) + 1;
    return null;
  }
  const ticket = await res.json();
  const ws = new WebSocket(base.replace(/^http/, "ws") + ticket.ws_url, { headers: { origin } });
  return new Promise((resolve) => {
    ws.on("message", (data, binary) => {
      if (!binary && JSON.parse(data.toString()).type === "session.created") resolve(ws);
    });
    ws.on("error", () => resolve(null));
    ws.on("close", () => resolve(null));
  });
}

const started = Date.now();
for (let i = 0; i < sockets; i += 50) {
  const batch = await Promise.all(Array.from({ length: Math.min(50, sockets - i) }, open));
  for (const ws of batch) if (ws) held.push(ws);
}
const openMs = Date.now() - started;

// One held socket asks `questions` questions as fast as it can.
let storm = { answers_started: 0, rate_limited: 0, close_code: null };
if (held.length > 0) {
  const ws = held[0];
  storm = await new Promise((resolve) => {
    const seen = { answers_started: 0, rate_limited: 0, close_code: null };
    ws.on("message", (data, binary) => {
      if (binary) return;
      const event = JSON.parse(data.toString());
      if (event.type === "response.created") seen.answers_started += 1;
      if (event.type === "error" && event.error.code === "rate_limited") seen.rate_limited += 1;
    });
    ws.on("close", (code) => resolve({ ...seen, close_code: code }));
    // 80 questions a second: within the 200-messages-a-second flood limit.
    let n = 0;
    const timer = setInterval(() => {
      if (n >= questions || ws.readyState !== WebSocket.OPEN) return clearInterval(timer);
      const item = { type: "message", role: "user", content: [{ type: "input_text", text: `question ${n}` }] };
      ws.send(JSON.stringify({ type: "conversation.item.create", item }));
      ws.send(JSON.stringify({ type: "response.create" }));
      n += 1;
    }, 12.5);
    setTimeout(() => resolve({ ...seen, close_code: "still open" }), questions * 12.5 + 5_000);
  });
}
const stillOpen = held.filter((ws) => ws.readyState === WebSocket.OPEN).length;
let probe = null;
if (probeKey) {
  const res = await fetch(`${base}/v1/sessions`, {
    method: "POST",
    headers: { "x-embed-key": probeKey, origin: probeOrigin, "content-type": "application/json" },
    body: "{}",
  });
  probe = res.status;
}
console.log(
  JSON.stringify({ sockets_tried: sockets, sessions_held: held.length, open_ms: openMs, refusals, storm, still_open: stillOpen, other_dealership_new_session: probe }),
);
for (const ws of held) ws.terminate();
