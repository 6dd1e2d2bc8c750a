// @ts-check
// What the browser tests share: the Adam under test (started by scripts/browser-test.sh), a
// Chromium whose microphone plays a WAV file, polling with timeouts, the REST API, and the
// emails Adam writes as .eml files.

import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
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
  /** Where Adam's "log" email transport writes each email as `<id>.eml`. */
  mailDir: required("ADAM_TEST_MAIL_DIR"),
  /** Where Adam expects HeyGen LiveAvatar (`providers.heygen.base_url`), and its API key:
   *  the avatar test runs a fake there. */
  heygenPort: Number(required("ADAM_TEST_HEYGEN_PORT")),
  heygenKey: required("ADAM_TEST_HEYGEN_KEY"),
  shotsDir: process.env.ADAM_SHOTS_DIR ?? "/tmp/adam-browser-shots",
  chromium: process.env.CHROMIUM ?? "/usr/bin/chromium",
};

mkdirSync(env.shotsDir, { recursive: true });

/**
 * Chromium with a fake microphone that plays `wav` (in a loop) and a fresh profile, closed
 * when the test ends; the page's console errors and warnings are reported with the test.
 * @param {import("node:test").TestContext} t
 * @param {string} wav
 * @param {{ args?: string[] }} [options] more Chromium flags
 */
export async function launchBrowser(t, wav, { args = [] } = {}) {
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
      ...args,
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

/** Signs in on the page's sign-in form, as the bootstrap admin unless told otherwise.
 *  @param {import("playwright-core").Page} page
 *  @param {{ email: string, password: string }} [as] */
export async function signIn(page, as = { email: env.adminEmail, password: env.adminPassword }) {
  await page.getByLabel("Email").fill(as.email);
  await page.getByLabel("Password").fill(as.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

/**
 * @typedef {{ file: string, to: string, subject: string, text: string, mtimeMs: number }} Email
 */

/**
 * Waits for an email Adam wrote to `to` whose subject matches `subject` and whose file is not
 * in `excluding` (the files there before, from `emailFiles()`); with its plain-text body decoded.
 * @param {string} to
 * @param {RegExp} subject
 * @param {{ excluding?: Set<string>, timeoutMs?: number }} [options]
 * @returns {Promise<Email>}
 */
export function waitForEmail(to, subject, { excluding = new Set(), timeoutMs = 15000 } = {}) {
  return waitFor(
    `a new email to ${to} with a subject matching ${subject} in ${env.mailDir}`,
    () =>
      readEmails()
        .filter((email) => !excluding.has(email.file) && email.to.toLowerCase().includes(to.toLowerCase()) && subject.test(email.subject))
        .sort((a, b) => b.mtimeMs - a.mtimeMs)[0],
    { timeoutMs, intervalMs: 200 },
  );
}

/** The email files written so far. */
export function emailFiles() {
  return new Set(readEmails().map((email) => email.file));
}

/** Every email in the mail folder (none while it does not exist).
 *  @returns {Email[]} */
export function readEmails() {
  /** @type {string[]} */
  let names = [];
  try {
    names = readdirSync(env.mailDir).filter((name) => name.endsWith(".eml") && !name.startsWith("."));
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = join(env.mailDir, name);
    const message = parseMime(readFileSync(file, "latin1"));
    return {
      file,
      to: message.headers.get("to") ?? "",
      subject: decodeWords(message.headers.get("subject") ?? ""),
      text: plainText(message) ?? "",
      mtimeMs: statSync(file).mtimeMs,
    };
  });
}

/** The set-password link in an email's text.
 *  @param {Email} email */
export function setPasswordLink(email) {
  const link = email.text.match(/https?:\/\/\S+\/admin\/#\/set-password\?token=[A-Za-z0-9_-]+(&for=[a-z]+)?/)?.[0];
  if (!link) throw new Error(`no set-password link in ${email.file}:\n${email.text}`);
  return link;
}

/**
 * @typedef {{ headers: Map<string, string>, body: string }} MimePart
 */

/** Headers (lower-case names, folded lines joined) and body of a MIME entity, read as latin1
 *  so that bytes survive until the body is decoded.
 *  @param {string} raw
 *  @returns {MimePart} */
function parseMime(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? "" : raw.slice(split).replace(/^\r?\n\r?\n/, "");
  /** @type {Map<string, string>} */
  const headers = new Map();
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** The decoded text/plain part of a (possibly multipart) message.
 *  @param {MimePart} part
 *  @returns {string | null} */
function plainText(part) {
  const type = part.headers.get("content-type") ?? "text/plain";
  const boundary = type.match(/boundary="?([^";]+)"?/i)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    for (const chunk of part.body.split(`--${boundary}`).slice(1)) {
      if (chunk.startsWith("--")) break;
      const text = plainText(parseMime(chunk.replace(/^\r?\n/, "")));
      if (text !== null) return text;
    }
    return null;
  }
  if (!/^text\/plain/i.test(type)) return null;
  const encoding = (part.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  if (encoding === "base64") return Buffer.from(part.body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const bytes = part.body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, "latin1").toString("utf8");
  }
  return Buffer.from(part.body, "latin1").toString("utf8");
}

/** Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`) in a header.
 *  @param {string} value */
function decodeWords(value) {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset, kind, text) =>
      kind.toLowerCase() === "b"
        ? Buffer.from(text, "base64").toString("utf8")
        : Buffer.from(text.replace(/_/g, " ").replace(/=([0-9A-Fa-f]{2})/g, (/** @type {string} */ _m, /** @type {string} */ hex) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8"),
    );
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
