// @ts-check
// The admin pages: an admin uploads a document, watches it become ready, and the assistant
// then answers from it.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { env, expectTransport, launchBrowser, shotPath, signIn, waitFor, waitForLine } from "./support.mjs";

/** A name of its own, so that the row found is this run's upload. */
const FACT_FILE = `dealership-mascot-${Date.now()}.md`;
const FACT = "# Our mascot\n\nThe Demo Motors mascot is a golden retriever named Biscuit. Biscuit greets visitors in the showroom every weekday morning.\n";

test("Admin: a document uploaded on the documents page becomes ready, and the assistant answers from it", async (t) => {
  const file = join(tmpdir(), FACT_FILE);
  writeFileSync(file, FACT);
  const page = await launchBrowser(t, env.silenceWav); // typed questions only

  await page.goto(`${env.adamUrl}/admin/`);
  await signIn(page);
  await page.getByRole("link", { name: "Documents" }).click();
  await page.locator('input[type="file"]').setInputFiles(file);
  const documentRow = page.locator(`tr[data-document="${FACT_FILE}"]`);
  await waitFor("the uploaded document in the list", () => documentRow.count(), { timeoutMs: 15000 });
  const status = await waitFor(
    "the document to be ready",
    async () => {
      const value = await documentRow.getAttribute("data-status");
      if (value === "failed") throw new Error(`ingestion failed: ${await documentRow.innerText()}`);
      return value === "ready" ? value : null;
    },
    { timeoutMs: 60000 },
  );
  assert.equal(status, "ready");
  assert.match(await documentRow.locator("td.num").first().innerText(), /^[1-9]\d*$/, "a ready document has chunks");
  await page.screenshot({ path: shotPath("admin-documents"), fullPage: true });

  // The other admin sections load without an error.
  for (const section of ["Users", "Sessions", "Settings", "Cache"]) {
    await page.getByRole("link", { name: section }).click();
    await waitFor(`the ${section} page`, () => page.getByRole("heading", { level: 1, name: section }).count());
    assert.equal(await page.locator(".adam-notice--error").count(), 0, `${section} shows an error`);
    if (section === "Settings") {
      assert.match(await page.locator("[data-snippet]").innerText(), /<script src="[^"]+\/widget\.js" data-embed-key="pk_[^"]+" async><\/script>/);
    }
  }

  // The assistant now knows the fact (asked in writing: the microphone only hears silence).
  await page.goto(`${env.adamUrl}/?transport=websocket`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "websocket");
  await page.getByLabel("Type a question").fill("What is the name of the dealership mascot?");
  await page.getByRole("button", { name: "Send" }).click();
  assert.match(await waitForLine(page, "assistant", /biscuit/i), /biscuit/i);
  // Leaving the page mid-answer would (rightly) save the turn as interrupted.
  await waitFor("the answer to be spoken in full", () => page.locator('[data-role="assistant"][data-status="completed"]').count(), { timeoutMs: 30000 });

  // The turn is in the session's transcript, with the document as its source.
  await page.goto(`${env.adamUrl}/admin/#/sessions`);
  const row = page.locator("tr[data-session]").first();
  await row.getByRole("button", { name: "Transcript" }).click();
  const turn = page.locator(".turn", { hasText: /biscuit/i });
  await turn.waitFor({ timeout: 15000 });
  assert.match(await turn.innerText(), /dealership-mascot-\d+\.md/i);
  await page.screenshot({ path: shotPath("admin-session-transcript") });
});

test("Reload: a page the browser revalidates (304 Not Modified) still runs under Adam's policy", async (t) => {
  const page = await launchBrowser(t, env.silenceWav);
  /** @type {string[]} */
  const blocked = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) blocked.push(message.text());
  });
  for (const path of ["/admin/", "/"]) {
    await page.goto(`${env.adamUrl}${path}`);
    await page.getByRole("button", { name: "Sign in" }).waitFor({ timeout: 15000 });
    await page.reload();
    const shown = await waitFor(`${path} after a reload`, () => page.getByRole("button", { name: "Sign in" }).count(), { timeoutMs: 5000 }).catch(() => 0);
    assert.ok(shown, `${path} is blank after a reload; the browser blocked: ${blocked.join(" | ") || "nothing"}`);
  }
});
