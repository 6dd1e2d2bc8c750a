// @ts-check
// What the browser tests share: the Adam under test (started by scripts/browser-test.sh), a
// Chromium whose microphone plays a WAV file, polling with timeouts, and the REST API.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with scripts/browser-test.sh`);
  return value;
}

export const env = {
  /** Where Adam serves the pages and the API. */
  adamUrl: required("ADAM_URL").replace(/\/$/, ""),
  adminEmail: required("ADAM_ADMIN_EMAIL"),
  adminPassword: required("ADAM_ADMIN_PASSWORD"),
  /** "What are your opening hours on Saturday?", then silence. */
  questionWav: required("ADAM_TEST_QUESTION_WAV"),
  /** The question, a pause, a second question that lands during the answer, then silence. */
  bargeInWav: required("ADAM_TEST_BARGE_IN_WAV"),
  /** Silence only (for typed questions). */
  silenceWav: required("ADAM_TEST_SILENCE_WAV"),
  shotsDir: process.env.ADAM_SHOTS_DIR ?? "/tmp/adam-browser-shots",
  chromium: process.env.CHROMIUM ?? "/usr/bin/chromium",
};

mkdirSync(env.shotsDir, { recursive: true });

/**
 * Chromium with a fake microphone that plays `wav` (in a loop) and a fresh profile, closed
 * when the test ends; the page's console errors and warnings are reported with the test.
 * @param {import("node:test").TestContext} t
 * @param {string} wav
 */
export async function launchBrowser(t, wav) {
  const profile = mkdtempSync(join(tmpdir(), "adam-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env.chromium,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  /** @type {string[]} */
  const policyViolations = [];
  context.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    t.diagnostic(`console ${message.type()}: ${message.text()}`);
    if (message.text().includes("Content Security Policy")) policyViolations.push(message.text());
  });
  context.on("weberror", (error) => t.diagnostic(`page error: ${error.error().message}`));
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    // Adam's pages must work under the policy Adam sends with them.
    assert.deepEqual(policyViolations, [], "Content-Security-Policy violations");
  });
  return page;
}

/**
 * Polls `probe` until it returns a truthy value; fails after `timeoutMs` with `what` and the
 * last value seen.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} probe
 * @param {{ timeoutMs?: number, intervalMs?: number }} [options]
 * @returns {Promise<NonNullable<T>>}
 */
export async function waitFor(what, probe, { timeoutMs = 30000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return /** @type {NonNullable<T>} */ (last);
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last seen: ${describe(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** @param {unknown} value */
function describe(value) {
  if (value instanceof Error) return value.message;
  return JSON.stringify(value)?.slice(0, 500) ?? String(value);
}

/** Signed-in REST calls to Adam as the bootstrap super_admin. */
export async function adminApi() {
  const login = await fetch(`${env.adamUrl}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: env.adminEmail, password: env.adminPassword }),
  });
  if (!login.ok) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const { access_token: token } = await login.json();
  return {
    /**
     * @param {string} method
     * @param {string} path
     * @param {unknown} [body]
     * @returns {Promise<any>}
     */
    async request(method, path, body) {
      const res = await fetch(`${env.adamUrl}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.status === 204 ? null : res.json();
    },
  };
}

/** The bootstrap dealership (the first one). */
export async function demoDealership() {
  const api = await adminApi();
  const [dealership] = await api.request("GET", "/v1/dealerships");
  return { api, dealership };
}

/** Signs in on the page's sign-in form.
 *  @param {import("playwright-core").Page} page */
export async function signIn(page) {
  await page.getByLabel("Email").fill(env.adminEmail);
  await page.getByLabel("Password").fill(env.adminPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/**
 * Records every mouth shape the avatar shows, with the avatar's state at that moment, from
 * now on (a MutationObserver on `data-viseme`). Works inside the widget's Shadow DOM too.
 * @param {import("playwright-core").Page} page
 * @param {string} [hostSelector] the widget's host element, when the avatar is in its shadow root
 */
export async function recordMouth(page, hostSelector) {
  await waitFor("the avatar", () => page.locator(`${hostSelector ?? ""} [data-viseme]`.trim()).count(), { timeoutMs: 15000 });
  await page.evaluate((host) => {
    const root = host ? document.querySelector(host)?.shadowRoot : document;
    const mouth = root?.querySelector("[data-viseme]");
    const avatar = root?.querySelector("[data-state]");
    if (!mouth || !avatar) throw new Error("no avatar on the page");
    /** @type {{ viseme: string, state: string | null }[]} */
    const seen = [];
    Object.assign(window, { __mouth: seen });
    new MutationObserver(() => seen.push({ viseme: mouth.getAttribute("data-viseme") ?? "", state: avatar.getAttribute("data-state") })).observe(mouth, {
      attributes: true,
      attributeFilter: ["data-viseme"],
    });
  }, hostSelector ?? null);
  return {
    /** The distinct open-mouth shapes shown while the avatar was speaking. */
    async spokenShapes() {
      /** @type {{ viseme: string, state: string | null }[]} */
      const seen = await page.evaluate(() => /** @type {any} */ (window).__mouth);
      return [...new Set(seen.filter((s) => s.state === "speaking" && s.viseme !== "sil").map((s) => s.viseme))];
    },
  };
}

/** The page's conversation diagnostics (`window.__adam.diagnostics()`).
 *  @param {import("playwright-core").Page} page */
export function diagnostics(page) {
  return page.evaluate(async () => {
    const conversation = /** @type {any} */ (window).__adam;
    return conversation ? conversation.diagnostics() : null;
  });
}

/** The text of the transcript lines of `role` ("user" or "assistant") in `scope`.
 *  @param {import("playwright-core").Page | import("playwright-core").Locator} scope
 *  @param {"user" | "assistant"} role */
async function lines(scope, role) {
  return scope.locator(`[data-role="${role}"] .adam-line__text`).allInnerTexts();
}

/**
 * Waits for a transcript line of `role` matching `pattern`; a timeout reports every line shown
 * and the latest events the page received.
 * @param {import("playwright-core").Page | import("playwright-core").Locator} scope
 * @param {"user" | "assistant"} role
 * @param {RegExp} pattern
 * @param {number} [timeoutMs]
 */
export async function waitForLine(scope, role, pattern, timeoutMs = 30000) {
  try {
    return await waitFor(`a ${role} line matching ${pattern}`, async () => (await lines(scope, role)).find((text) => pattern.test(text)), { timeoutMs });
  } catch (error) {
    const page = "page" in scope ? scope.page() : scope;
    const shown = await page.locator(".adam-transcript, .adam-notice").allInnerTexts();
    const events = await page.evaluate(() => /** @type {any} */ (window).__adam?.eventLog.slice(-15) ?? null);
    throw new Error(`${error instanceof Error ? error.message : error}\n  shown: ${JSON.stringify(shown)}\n  latest events: ${JSON.stringify(events)}`);
  }
}

/** @param {string} name */
export function shotPath(name) {
  return join(env.shotsDir, `${name}.png`);
}

/**
 * Waits until the conversation is live over `kind`; when it is not, fails with what the page
 * tells the customer (e.g. why WebRTC could not connect).
 * @param {import("playwright-core").Page | import("playwright-core").Locator} scope
 * @param {"webrtc" | "websocket"} kind
 */
export async function expectTransport(scope, kind) {
  try {
    await waitFor(`the conversation to go live over ${kind}`, () => scope.locator(`[data-transport="${kind}"]`).count(), { timeoutMs: 20000 });
  } catch (error) {
    const notice = await scope.locator(".adam-notice").allInnerTexts();
    const why = notice.length ? `the page says: "${notice.join(" / ")}"` : "the page shows no notice";
    throw new Error(`${kind} did not connect; ${why}. ${error instanceof Error ? error.message : ""}`);
  }
}
