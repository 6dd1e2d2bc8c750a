// @ts-check
// Retention and the recording notice: an admin sets them on the settings page, and a customer
// sees the notice while talking; a dealership_admin sees the usage limits but cannot edit them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { demoDealership, env, expectTransport, launchBrowser, shotPath, signIn, waitFor } from "./support.mjs";

const NOTICE = `Calls with Demo Motors are recorded (${Date.now()}).`;

test("Privacy: the settings page saves retention and the recording notice, and the conversation page shows the notice", async (t) => {
  const { api, dealership } = await demoDealership();
  t.after(() => api.request("PATCH", `/v1/dealerships/${dealership.id}`, { retention_days: null, recording_notice: null }));
  const page = await launchBrowser(t, env.silenceWav);

  await page.goto(`${env.adamUrl}/admin/#/settings`);
  await signIn(page);
  const retention = page.locator('[data-setting="retention_days"]');
  await retention.waitFor({ timeout: 15000 });
  // Not a number of days: refused by the form, nothing saved.
  await retention.fill("a month");
  await page.getByRole("button", { name: "Save settings" }).click();
  await waitFor("the retention field to be refused", () => page.locator('[data-field-error="retention_days"]').count());
  assert.equal((await api.request("GET", `/v1/dealerships/${dealership.id}`)).retention_days, null);

  await retention.fill("30");
  await page.locator('[data-setting="recording_notice"]').fill(NOTICE);
  // A super_admin may edit the limits.
  assert.equal(await page.locator('[data-setting="limits"]').getAttribute("readonly"), null);
  await page.getByRole("button", { name: "Save settings" }).click();
  await waitFor("the settings to be saved", () => page.getByText("Saved.").count());
  const saved = await api.request("GET", `/v1/dealerships/${dealership.id}`);
  assert.equal(saved.retention_days, 30);
  assert.equal(saved.recording_notice, NOTICE);
  await page.reload();
  await retention.waitFor({ timeout: 15000 });
  assert.equal(await retention.inputValue(), "30");
  await page.screenshot({ path: shotPath("admin-settings-privacy"), fullPage: true });

  await page.goto(`${env.adamUrl}/?transport=websocket`);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await expectTransport(page, "websocket");
  const notice = page.locator("[data-recording-notice]");
  await notice.waitFor({ timeout: 15000 });
  assert.equal((await notice.innerText()).trim(), NOTICE);
  await page.screenshot({ path: shotPath("conversation-recording-notice") });
  await page.getByRole("button", { name: "End", exact: true }).click();
});

test("Privacy: a dealership_admin sees the usage limits read-only", async (t) => {
  const { api, dealership } = await demoDealership();
  const email = `privacy-admin-${Date.now()}@browser-test.local`;
  const password = "a long browser-test password";
  const user = await api.request("POST", "/v1/users", { email, password, role: "dealership_admin", dealership_id: dealership.id });
  t.after(() => api.request("DELETE", `/v1/users/${user.id}`));
  const page = await launchBrowser(t, env.silenceWav);

  await page.goto(`${env.adamUrl}/admin/#/settings`);
  await signIn(page, { email, password });
  const limits = page.locator('[data-setting="limits"]');
  await limits.waitFor({ timeout: 15000 });
  assert.notEqual(await limits.getAttribute("readonly"), null);
  // Saving the other settings does not send the limits (Adam would refuse them: 403).
  await page.getByRole("button", { name: "Save settings" }).click();
  await waitFor("the settings to be saved", () => page.getByText("Saved.").count());
});
