// @ts-check
// What the customer is told when things go wrong: a blocked microphone, a busy server (and the
// page recovering by itself once it is not), a conversation ended by the dealership.

import assert from "node:assert/strict";
import { test } from "node:test";
import { demoDealership, env, launchBrowser, waitFor } from "./support.mjs";

/** @param {import("playwright-core").Page} page */
async function noticeText(page) {
  return (await page.locator(".adam-notice").allInnerTexts()).join(" / ");
}

test("Microphone blocked: the page says so and how to allow it", async (t) => {
  const { dealership } = await demoDealership();
  const page = await launchBrowser(t, env.silenceWav);
  // What the browser does when the person (or the site settings) refuse the microphone.
  await page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  });
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  const notice = await waitFor("a notice", () => noticeText(page));
  assert.match(notice, /Microphone access is blocked/);
  assert.equal(await page.getByRole("button", { name: "Start conversation" }).count(), 1, "the customer can try again");
});

test("Server busy: the page says so, retries by itself and connects once Adam has room", async (t) => {
  const { dealership } = await demoDealership();
  const page = await launchBrowser(t, env.silenceWav);
  let refusals = 0;
  await page.route("**/v1/sessions", async (route) => {
    if (refusals >= 2) return route.fallback();
    refusals++;
    await route.fulfill({ status: 503, json: { error: { code: "busy", message: "too many live sessions" } } });
  });
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  const notice = await waitFor("the busy notice", async () => ((await noticeText(page)).includes("busy") ? noticeText(page) : null));
  assert.match(notice, /Adam is busy.*Reconnecting in \d+ s/);
  await waitFor("the conversation to go live after the retries", () => page.locator("[data-transport]").count(), { timeoutMs: 20000 });
  assert.equal(refusals, 2);
  assert.equal(await page.locator(".adam-notice").count(), 0, "the busy notice is gone");
});

test("Ended by an admin: the admin ends a live conversation on the Sessions page, and the customer is told", async (t) => {
  const { dealership } = await demoDealership();
  const customer = await launchBrowser(t, env.silenceWav);
  await customer.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  await customer.getByRole("button", { name: "Start conversation" }).click();
  await waitFor("the customer's conversation to go live", () => customer.locator("[data-transport]").count(), { timeoutMs: 20000 });

  const admin = await customer.context().newPage();
  admin.on("dialog", (dialog) => void dialog.accept());
  await admin.goto(`${env.adamUrl}/admin/#/sessions`);
  await admin.getByLabel("Email").fill(env.adminEmail);
  await admin.getByLabel("Password").fill(env.adminPassword);
  await admin.getByRole("button", { name: "Sign in" }).click();
  const live = admin.locator("tr[data-session]", { hasText: "live" }).first();
  await live.waitFor({ timeout: 15000 });
  const sessionId = await live.getAttribute("data-session");
  await live.getByRole("button", { name: "End" }).click();

  const notice = await waitFor("the customer's notice", () => noticeText(customer), { timeoutMs: 15000 });
  assert.match(notice, /ended by the dealership/);
  assert.equal(await customer.getByRole("button", { name: "Start a new conversation" }).count(), 1);
  const ended = admin.locator(`tr[data-session="${sessionId}"]`, { hasText: "ended by admin" });
  await waitFor("the session to be listed as ended by admin", () => ended.count(), { timeoutMs: 15000 });
});

test("WebRTC refused: the page falls back to the WebSocket by itself, with a new session", async (t) => {
  const { dealership } = await demoDealership();
  const page = await launchBrowser(t, env.silenceWav);
  /** @type {string[]} */
  const sessions = [];
  page.on("response", (response) => {
    if (response.url().endsWith("/v1/sessions") && response.status() === 201) sessions.push(response.url());
  });
  // As a server (or a proxy in front of it) without WebRTC would answer the offer.
  await page.route("**/v1/sessions/*/webrtc*", (route) => route.fulfill({ status: 404, json: { error: { code: "not_found", message: "no such route" } } }));
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await waitFor("the conversation to go live over the WebSocket", () => page.locator('[data-transport="websocket"]').count(), { timeoutMs: 20000 });
  assert.equal(sessions.length, 2, "one session for the WebRTC attempt, a new one for the WebSocket (tickets work once)");
  assert.equal(await page.locator(".adam-notice").count(), 0, "a silent fallback");
});
