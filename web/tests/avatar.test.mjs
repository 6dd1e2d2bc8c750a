// @ts-check
// A dealership whose avatar is a HeyGen LiveAvatar ({"provider": "heygen", "avatar_id": …}).
// Adam's real HeyGen client talks to a fake LiveAvatar API (fake-heygen.mjs); its start answer
// sends the browser to a fake LiveKit server (fake-livekit.mjs) that the page's real
// `livekit-client` joins, and whose avatar's video (a canvas with a moving square) and voice
// (a tone) come over real WebRTC from a second page of the same browser.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FakeHeyGen } from "./fake-heygen.mjs";
import { FakeLiveKit, mediaPage } from "./fake-livekit.mjs";
import { demoDealership, diagnostics, env, expectTransport, launchBrowser, recordMouth, shotPath, waitFor, waitForLine } from "./support.mjs";

const LIVEKIT = { apiKey: "APIfakelivekit", secret: "fake-livekit-secret-for-the-browser-tests" };
const AVATAR_ID = "avatar-browser-test";
const QUESTION = "What are your opening hours on Saturday?";
const ANSWER = /saturday/i;

/** A self-signed certificate for 127.0.0.1: the fake LiveKit is `wss://`, as HeyGen's are. */
function certificate() {
  const dir = mkdtempSync(join(tmpdir(), "adam-livekit-cert-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "pipe" });
    return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The fakes, the dealership switched to the HeyGen avatar (restored afterwards), and a browser
 * whose second page sends the avatar's media. `cleanup` takes more things to undo.
 * @param {import("node:test").TestContext} t
 * @param {string} wav
 */
async function setUp(t, wav) {
  /** @type {(() => unknown)[]} */
  const undo = [];
  // Registered before the browser's own hook, which fails the test on a CSP violation and
  // would stop later hooks: the fakes' ports and the dealership's settings are released
  // whatever happens.
  t.after(async () => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (error) {
        t.diagnostic(`cleanup failed: ${error}`);
      }
    }
  });
  /** @param {() => unknown} step */
  const cleanup = (step) => undo.push(step);

  const { api, dealership } = await demoDealership();
  const page = await launchBrowser(t, wav, {
    // The fake LiveKit's certificate is self-signed; both pages' ICE candidates are plain
    // loopback addresses (not mDNS names) so the two can connect.
    args: ["--ignore-certificate-errors", "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  const media = await mediaPage(await page.context().newPage());
  const livekit = await FakeLiveKit.start({ ...certificate(), ...LIVEKIT, media });
  cleanup(() => livekit.close());
  const heygen = await FakeHeyGen.start({ port: env.heygenPort, apiKey: env.heygenKey, livekit: { url: livekit.url, ...LIVEKIT } });
  cleanup(() => heygen.close());

  const previous = dealership.avatar ?? {};
  await api.request("PATCH", `/v1/dealerships/${dealership.id}`, { avatar: { ...previous, provider: "heygen", avatar_id: AVATAR_ID } });
  cleanup(() => api.request("PATCH", `/v1/dealerships/${dealership.id}`, { avatar: previous }));

  /** @type {string[]} */
  const warnings = [];
  page.on("console", (message) => {
    if (message.type() === "warning") warnings.push(message.text());
  });
  return { page, livekit, heygen, dealership, api, warnings, cleanup };
}

/** Types the question in the composer.
 *  @param {import("playwright-core").Page} page */
async function ask(page) {
  await page.getByLabel("Type a question").fill(QUESTION);
  await page.getByRole("button", { name: "Send" }).click();
}

/**
 * What the customer sees of the video avatar: frames presented by its `<video>` (counted with
 * `requestVideoFrameCallback`), and samples of its picture drawn to a canvas (mean colour, and
 * where the orange square is).
 * @param {import("playwright-core").Page} page
 * @param {string} [hostSelector] the widget's host element, when the avatar is in its shadow root
 */
function watchVideo(page, hostSelector) {
  return page.evaluate(async (host) => {
    const root = host ? document.querySelector(host)?.shadowRoot : document;
    const video = /** @type {HTMLVideoElement | null | undefined} */ (root?.querySelector('[data-avatar="video"] video'));
    if (!video) return null;
    let frames = 0;
    const deadline = performance.now() + 10000;
    await new Promise((resolve) => {
      const count = () => {
        frames++;
        if (frames >= 15 || performance.now() > deadline) resolve(undefined);
        else video.requestVideoFrameCallback(count);
      };
      video.requestVideoFrameCallback(count);
      setTimeout(resolve, 10000);
    });
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
    const sample = () => {
      g.drawImage(video, 0, 0);
      const { data } = g.getImageData(0, 0, canvas.width, canvas.height);
      let r = 0, gr = 0, b = 0, orangeX = 0, orange = 0;
      for (let i = 0; i < data.length; i += 4) {
        r += data[i];
        gr += data[i + 1];
        b += data[i + 2];
        if (data[i] > 180 && data[i + 2] < 90) {
          orange++;
          orangeX += (i / 4) % canvas.width;
        }
      }
      const n = data.length / 4;
      return { r: r / n, g: gr / n, b: b / n, squareX: orange ? orangeX / orange : null };
    };
    const first = sample();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const second = sample();
    const rect = video.getBoundingClientRect();
    return { frames, width: video.videoWidth, height: video.videoHeight, shown: rect.width > 0 && rect.height > 0, first, second, currentTime: video.currentTime };
  }, hostSelector ?? null);
}

/**
 * The checks of a playing video avatar: frames presented, the picture's colours, the square moving.
 * @param {Awaited<ReturnType<typeof watchVideo>>} video
 */
function assertAvatarVideo(video) {
  assert.ok(video, "no video element");
  assert.ok(video.shown, "the video element has no size on the page");
  assert.ok(video.frames >= 15, `the avatar's video presented ${video.frames} frames in 10 s`);
  assert.equal(`${video.width}x${video.height}`, "320x240");
  // The picture is the avatar's: the blue background (#1d4ed8), not black, and the orange
  // square moves.
  assert.ok(video.first.b > 150 && video.first.b > video.first.r + 50, `the video's mean colour is ${JSON.stringify(video.first)}`);
  assert.ok(video.first.squareX !== null && video.second.squareX !== null && Math.abs(video.first.squareX - video.second.squareX) > 5, `the square does not move: ${JSON.stringify(video)}`);
}

test("HeyGen avatar: the customer sees and hears the video avatar speak the answer; Adam's own audio of it is not played", async (t) => {
  const { page, livekit, heygen, dealership, warnings } = await setUp(t, env.silenceWav);
  await page.bringToFront();
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}&transport=websocket`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "websocket");

  // Adam started a LiveAvatar session (LITE, the dealership's avatar) and sent avatar.stream.
  const session = await waitFor("a LiveAvatar session with its command socket connected", () => {
    const s = heygen.latest();
    return s?.started && s.socketOpened ? s : null;
  }, { timeoutMs: 20000 });
  assert.equal(session.avatarId, AVATAR_ID);
  await waitFor("avatar.stream", async () => (await page.evaluate(() => /** @type {any} */ (window).__adam.eventLog)).includes("avatar.stream"), { timeoutMs: 20000 });

  // The page joined that room with HeyGen's token, and shows the avatar's video instead of the
  // built-in face.
  await waitFor("the video avatar to be shown", () => page.locator('[data-avatar="video"] video').count(), { timeoutMs: 30000 });
  const join = livekit.joins[0];
  assert.equal(join?.room, session.room, "the page joined the room HeyGen's start answer named");
  assert.equal(join?.identity, "customer");
  assert.equal(await page.locator("[data-viseme]").count(), 0, "the built-in avatar is hidden while the video avatar is shown");

  assertAvatarVideo(await watchVideo(page));

  // Its voice arrives and plays (the tone: audio energy, not silence).
  const voice = await waitFor("the avatar's voice to play", async () => {
    const audio = (await diagnostics(page))?.videoAvatar?.audio;
    return audio && audio.packetsReceived > 50 && audio.totalAudioEnergy > 0 && audio.playing ? audio : null;
  }, { timeoutMs: 15000 });
  assert.ok(voice.packetsReceived > 50);

  // A question: the answer is shown, spoken by the avatar (its audio went to HeyGen), and
  // Adam's own frames of it arrive but are not played.
  const before = await diagnostics(page);
  assert.ok(before);
  await ask(page);
  assert.match(await waitForLine(page, "assistant", ANSWER, 60000), ANSWER);
  await waitFor("the video avatar to be speaking", () => page.locator('[data-avatar="video"][data-state="speaking"]').count(), { timeoutMs: 30000 });
  await page.screenshot({ path: shotPath("avatar-heygen") });
  await waitFor("the answer to finish", () => page.locator('[data-role="assistant"][data-status="completed"]').count(), { timeoutMs: 60000 });
  await waitFor("the avatar to listen again", () => page.locator('[data-avatar="video"][data-state="listening"]').count(), { timeoutMs: 15000 });

  const after = await diagnostics(page);
  assert.ok(after);
  assert.ok(after.audioFramesReceived > before.audioFramesReceived + 25, `Adam's frames of the answer did not arrive: ${before.audioFramesReceived} → ${after.audioFramesReceived}`);
  assert.equal(after.audioFramesPlayed, before.audioFramesPlayed, "Adam's own audio of the avatar's answer was played");
  assert.ok(FakeHeyGen.spokenSamples(session) > 24000, `HeyGen received ${FakeHeyGen.spokenSamples(session)} samples in agent.speak`);
  assert.ok(session.speakEnds.length >= 1 && session.speakEnds.every((id) => id.startsWith("resp_")), `agent.speak_end: ${session.speakEnds}`);
  assert.ok(session.keepAlives >= 1, "no keep-alive reached HeyGen");
  assert.deepEqual(warnings.filter((w) => w.includes("video avatar")), []);

  // Ending the conversation leaves the room, and Adam stops the LiveAvatar session.
  await page.getByRole("button", { name: "End", exact: true }).click();
  await waitFor("the page to leave the LiveKit room", () => join?.closed, { timeoutMs: 10000 });
  await waitFor("Adam to stop the LiveAvatar session", () => session.stops.length > 0, { timeoutMs: 15000 });
});

test("HeyGen avatar refused: the LiveKit room cannot be joined, so the built-in avatar speaks Adam's audio", async (t) => {
  const { page, livekit, heygen, dealership, warnings } = await setUp(t, env.silenceWav);
  livekit.mode = "refuse";
  await page.bringToFront();
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}`);
  const mouth = await recordMouth(page);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "webrtc");

  await waitFor("a LiveAvatar session", () => heygen.latest()?.socketOpened, { timeoutMs: 20000 });
  await waitFor("the page to try the room and be refused", () => livekit.refused > 0, { timeoutMs: 20000 });
  const warning = await waitFor("the page's warning", () => warnings.find((w) => w.includes("video avatar is not available")), { timeoutMs: 20000 });
  assert.match(warning, /could not be joined/);
  assert.equal(await page.locator('[data-avatar="video"]').count(), 0);
  assert.ok(await page.locator("[data-viseme]").isVisible(), "the built-in avatar is shown");

  // This answer is created after avatar.stream, so the avatar would have spoken it: the page
  // plays Adam's audio instead, with the built-in avatar's mouth.
  await ask(page);
  assert.match(await waitForLine(page, "assistant", ANSWER, 60000), ANSWER);
  await waitFor("the built-in avatar to speak", () => page.locator('[data-state="speaking"]:not([data-avatar="video"])').count(), { timeoutMs: 30000 });
  const heard = await waitFor("Adam's audio to play", async () => {
    const d = await diagnostics(page);
    return d?.playing && (d.inboundAudio?.packetsReceived ?? 0) > 0 && d.withheldResponses.length === 0 ? d : null;
  }, { timeoutMs: 15000 });
  assert.ok(heard.playing);
  const shapes = await waitFor("three different mouth shapes while speaking", async () => {
    const seen = await mouth.spokenShapes();
    return seen.length >= 3 ? seen : null;
  });
  assert.ok(shapes.length >= 3);
  assert.equal(livekit.joins.length, 0, "no signalling connection was accepted");
  await page.screenshot({ path: shotPath("avatar-heygen-refused") });
});

test("HeyGen avatar lost mid-answer: avatar_failed brings back the built-in avatar, which speaks the rest of the answer with Adam's audio", async (t) => {
  const { page, livekit, heygen, dealership } = await setUp(t, env.silenceWav);
  await page.bringToFront();
  await page.goto(`${env.adamUrl}/?embed_key=${encodeURIComponent(dealership.embed_key)}&transport=webrtc`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "webrtc");
  await waitFor("the video avatar to be shown", () => page.locator('[data-avatar="video"] video').count(), { timeoutMs: 30000 });
  const session = heygen.latest();
  assert.ok(session);

  // The avatar speaks the answer: Adam's own track keeps arriving, muted.
  await ask(page);
  await waitFor("the video avatar to be speaking", () => page.locator('[data-avatar="video"][data-state="speaking"]').count(), { timeoutMs: 60000 });
  const speaking = await diagnostics(page);
  assert.ok(speaking);
  assert.equal(speaking.withheldResponses.length, 1, "the answer is the avatar's");
  assert.equal(speaking.audible, false, "Adam's own audio is audible while the video avatar speaks");
  assert.equal(speaking.playing, false);

  // LiveAvatar dies: Adam tells the page (`avatar_failed`), which leaves the room and plays
  // the rest of this answer from Adam's audio, with the built-in avatar's mouth.
  heygen.drop(session);
  await waitFor("the page to leave the LiveKit room", () => livekit.joins[0]?.closed, { timeoutMs: 15000 });
  await waitFor("Adam to stop the lost LiveAvatar session", () => session.stops.includes("SERVER_ERROR"), { timeoutMs: 15000 });
  const events = await page.evaluate(() => /** @type {any} */ (window).__adam.eventLog.slice(-40));
  assert.ok(events.includes("error"), `no error event: ${events}`);
  const resumed = await waitFor("Adam's audio of the same answer to play", async () => {
    const d = await diagnostics(page);
    return d?.audible && d.playing && d.withheldResponses.length === 0 ? d : null;
  }, { timeoutMs: 5000 });
  assert.ok(resumed.audible);
  assert.equal(await page.locator('[data-role="assistant"][data-status="streaming"]').count(), 1, "the answer was over before Adam's audio came back");
  const mouth = await recordMouth(page);
  const shapes = await waitFor("the built-in avatar's mouth to move for the rest of the answer", async () => {
    const seen = await mouth.spokenShapes();
    return seen.length >= 2 ? seen : null;
  });
  assert.ok(shapes.length >= 2);
  await waitFor("the answer to finish", () => page.locator('[data-role="assistant"][data-status="completed"]').count(), { timeoutMs: 60000 });
  await page.screenshot({ path: shotPath("avatar-heygen-lost") });
});

test("HeyGen avatar in the widget: on the dealership's own site, the widget loads LiveKit from Adam and shows the video avatar", async (t) => {
  const { page, livekit, dealership, api, cleanup } = await setUp(t, env.silenceWav);
  const site = createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo Motors</title></head>
<body><h1>Demo Motors</h1><script src="${env.adamUrl}/widget.js" data-embed-key="${dealership.embed_key}" async></script></body></html>`);
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", () => resolve(undefined)));
  cleanup(() => {
    site.closeAllConnections();
    site.close();
  });
  const address = site.address();
  assert.ok(address && typeof address === "object");
  const origin = `http://127.0.0.1:${address.port}`;
  const allowed = dealership.allowed_origins;
  await api.request("PATCH", `/v1/dealerships/${dealership.id}`, { allowed_origins: [...allowed, origin] });
  cleanup(() => api.request("PATCH", `/v1/dealerships/${dealership.id}`, { allowed_origins: allowed }));

  await page.bringToFront();
  await page.goto(`${origin}/`);
  // LiveKit is not part of widget.js: it comes only with a video avatar.
  assert.equal(await page.evaluate(() => "AdamVideoAvatar" in window), false);
  const widget = page.locator("[data-adam-widget]");
  await widget.getByRole("button", { name: "Talk with our assistant" }).click();
  await waitFor("the widget's conversation to go live", () => widget.locator("[data-transport]").count(), { timeoutMs: 20000 });
  await waitFor("the widget to show the video avatar", () => widget.locator('[data-avatar="video"] video').count(), { timeoutMs: 30000 });
  assert.equal(await page.evaluate(() => "AdamVideoAvatar" in window), true, "widget-livekit.js was not loaded");
  assert.equal(livekit.joins.length, 1);
  assertAvatarVideo(await watchVideo(page, "[data-adam-widget]"));
  await page.screenshot({ path: shotPath("avatar-heygen-widget") });
});
