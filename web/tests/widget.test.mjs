// @ts-check
// The embeddable widget on a dealership's own site: another origin, allowed in the
// dealership's settings, with page styles that would break an unprotected widget.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { demoDealership, env, launchBrowser, shotPath, waitFor, waitForLine } from "./support.mjs";

/** @param {string} embedKey */
function hostPage(embedKey) {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Demo Motors — new and used cars</title>
  <style>
    body { font: 18px Georgia, serif; color: #5b1a1a; background: #fdf6ec; margin: 0; }
    header { padding: 24px 40px; background: #5b1a1a; color: #fff; }
    main { padding: 40px; max-width: 720px; }
    /* Rules that would wreck a widget living in the page's DOM. */
    button { background: hotpink !important; font-size: 40px !important; }
    div { border: 3px dotted green; }
    p { text-transform: uppercase; }
  </style>
</head>
<body>
  <header><h1>Demo Motors</h1></header>
  <main><p>Family-owned since 1987. New Honda and Toyota vehicles, certified pre-owned cars of every make.</p></main>
  <script src="${env.adamUrl}/widget.js" data-embed-key="${embedKey}" async></script>
</body>
</html>`;
}

test("Widget: on the dealership's own site (an allowed origin) a visitor opens it, asks aloud and gets the answer", async (t) => {
  const { api, dealership } = await demoDealership();
  const server = createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(hostPage(dealership.embed_key));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  t.after(() => server.close());
  const address = server.address();
  assert.ok(address && typeof address === "object");
  const origin = `http://127.0.0.1:${address.port}`;

  const allowed = dealership.allowed_origins;
  await api.request("PATCH", `/v1/dealerships/${dealership.id}`, { allowed_origins: [...allowed, origin] });
  t.after(() => api.request("PATCH", `/v1/dealerships/${dealership.id}`, { allowed_origins: allowed }));

  const page = await launchBrowser(t, env.questionWav);
  await page.goto(`${origin}/`);
  const widget = page.locator("[data-adam-widget]");
  const launcher = widget.getByRole("button", { name: "Talk with our assistant" });
  await launcher.waitFor({ timeout: 15000 });
  // The host page's `button { background: hotpink !important }` does not reach the Shadow DOM.
  assert.notEqual(await launcher.evaluate((el) => getComputedStyle(el).backgroundColor), "rgb(255, 105, 180)");

  await launcher.click();
  // Whichever transport the widget settles on (WebRTC, or the WebSocket fallback).
  await waitFor("the widget's conversation to go live", () => widget.locator("[data-transport]").count(), { timeoutMs: 20000 });
  // The visitor is told the conversation is recorded (the dealership's notice, or the server's).
  assert.match(await widget.locator("[data-recording-notice]").innerText(), /recorded/i);
  assert.match(await waitForLine(widget, "user", /opening .*saturday/i), /opening .*saturday/i);
  assert.match(await waitForLine(widget, "assistant", /saturday/i), /saturday/i);
  await waitFor("the widget's avatar to speak", () => widget.locator('[data-state="speaking"]').count(), { timeoutMs: 15000 });
  await page.screenshot({ path: shotPath("widget") });
});
