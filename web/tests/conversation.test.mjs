// @ts-check
// The conversation page, spoken to through Chromium's fake microphone: over WebRTC, over the
// WebSocket fallback, and a barge-in.

import assert from "node:assert/strict";
import { test } from "node:test";
import { demoDealership, diagnostics, env, expectTransport, launchBrowser, recordMouth, shotPath, signIn, waitFor, waitForLine } from "./support.mjs";

/** What the question WAV asks ("What are your opening hours on Saturday?", as Whisper tiny
 *  hears espeak: "opening hours" sometimes comes out as "opening our own"), and what the
 *  demo dealership's documents answer. */
const QUESTION = /opening .*saturday/i;
const ANSWER = /saturday/i;
/** What the barge-in WAV asks over the first answer, and the documents' answer. */
const SECOND_QUESTION = /where is the dealership/i;
const SECOND_ANSWER = /harbor road/i;

/**
 * The checks a customer would make on one spoken question: their words appear, the answer
 * appears and is heard, and the avatar's lips move while it is.
 * @param {import("playwright-core").Page} page
 * @param {Awaited<ReturnType<typeof recordMouth>>} mouth
 * @param {string} shot
 */
async function expectSpokenAnswer(page, mouth, shot) {
  assert.match(await waitForLine(page, "user", QUESTION), QUESTION);
  assert.match(await waitForLine(page, "assistant", ANSWER), ANSWER);
  await waitFor("the avatar to speak", () => page.locator('[data-state="speaking"]').count(), { timeoutMs: 15000 });
  const shapes = await waitFor("three different mouth shapes while speaking", async () => {
    const seen = await mouth.spokenShapes();
    return seen.length >= 3 ? seen : null;
  });
  assert.ok(shapes.length >= 3, `mouth shapes: ${shapes}`);
  await page.screenshot({ path: shotPath(shot) });
}

test("WebRTC: a visitor with the embed key asks aloud, reads and hears the answer, and the avatar's mouth moves", async (t) => {
  const { dealership } = await demoDealership();
  const page = await launchBrowser(t, env.questionWav);
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}&transport=webrtc`);
  const mouth = await recordMouth(page);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "webrtc");
  await expectSpokenAnswer(page, mouth, "conversation-webrtc");

  const audio = await waitFor("inbound RTP audio packets", async () => {
    const stats = (await diagnostics(page))?.inboundAudio;
    return stats && stats.packetsReceived > 0 ? stats : null;
  });
  assert.ok(audio.packetsReceived > 0);
  await waitFor("the answer to finish", () => page.locator('[data-role="assistant"][data-status="completed"]').count(), { timeoutMs: 60000 });
  assert.match(await page.locator("[data-latency]").first().innerText(), /Reply in \d+ ms/);
});

test("WebSocket fallback: a signed-in user asks aloud, reads and hears the answer, and the avatar's mouth moves", async (t) => {
  const page = await launchBrowser(t, env.questionWav);
  await page.goto(`${env.adamUrl}/?transport=websocket`);
  await signIn(page);
  const mouth = await recordMouth(page);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "websocket");
  await expectSpokenAnswer(page, mouth, "conversation-websocket");

  const frames = (await diagnostics(page))?.audioFramesReceived ?? 0;
  assert.ok(frames > 0, "no PCM frame of the answer was received");
  await waitFor("the answer to finish", () => page.locator('[data-role="assistant"][data-status="completed"]').count(), { timeoutMs: 60000 });
});

test("Barge-in: speaking over the answer stops its audio at once, and the new question is answered", async (t) => {
  const { dealership } = await demoDealership();
  const page = await launchBrowser(t, env.bargeInWav);
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await waitFor("the conversation to go live", () => page.locator("[data-transport]").count(), { timeoutMs: 20000 });
  await waitFor("the avatar to speak the first answer", () => page.locator('[data-state="speaking"]').count(), { timeoutMs: 30000 });

  // Measured in the page, so the answer to the second question cannot start in between.
  const stop = await page.evaluate(async () => {
    const conversation = /** @type {any} */ (window).__adam;
    const deadline = performance.now() + 30000;
    while (!conversation.eventLog.includes("response.done:cancelled")) {
      if (performance.now() > deadline) return { cancelled: false, stoppedWithinMs: null, events: conversation.eventLog.slice(-20) };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const cancelledAt = performance.now();
    while ((await conversation.diagnostics()).playing) {
      if (performance.now() - cancelledAt > 1000) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { cancelled: true, stoppedWithinMs: performance.now() - cancelledAt, events: conversation.eventLog.slice(-20) };
  });
  assert.ok(stop.cancelled, `no cancelled response; events: ${stop.events}`);
  assert.ok(stop.events.includes("response.output_audio.cleared"), `no response.output_audio.cleared; events: ${stop.events}`);
  assert.ok(stop.stoppedWithinMs !== null && stop.stoppedWithinMs < 200, `playback went on ${stop.stoppedWithinMs} ms after the cancellation`);
  await waitFor("the interrupted answer to be marked", () => page.locator('[data-role="assistant"][data-status="cancelled"]').count());

  assert.match(await waitForLine(page, "user", SECOND_QUESTION), SECOND_QUESTION);
  assert.match(await waitForLine(page, "assistant", SECOND_ANSWER), SECOND_ANSWER);
});
