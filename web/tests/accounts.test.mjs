// @ts-check
// Accounts by email: an admin invites a user who chooses their password from the emailed link;
// a user who forgot their password gets a link, and a used link is refused with a clear message.
// The emails are the .eml files Adam's "log" transport writes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, demoDealership, emailFiles, env, launchBrowser, setPasswordLink, shotPath, signIn, waitFor, waitForEmail } from "./support.mjs";

/** An address of its own per run, so the emails found are this run's. */
const stamp = Date.now();

/**
 * Chooses `password` on the set-password page the browser is on, and waits for the sign-in form.
 * @param {import("playwright-core").Page} page
 * @param {string} password
 */
async function choosePassword(page, password) {
  await page.getByLabel("New password").fill(password);
  await page.getByLabel("Confirm password").fill(password);
  await page.getByRole("button", { name: "Set password" }).click();
  const notice = page.getByRole("status").filter({ hasText: "Your password is set" });
  await notice.waitFor({ timeout: 10000 });
  await page.screenshot({ path: shotPath("admin-sign-in-password-set") });
  assert.ok(!page.url().includes("token="), "the used link is no longer in the address bar");
}

test("Invitation: an admin invites a user on the Users page; the emailed link lets them choose a password and sign in", async (t) => {
  const email = `invited-${stamp}@example.com`;
  const password = "invited person's password";
  const page = await launchBrowser(t, env.silenceWav);
  /** @type {string[]} */
  const dialogs = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.accept();
  });

  await page.goto(`${env.adamUrl}/admin/#/users`);
  await signIn(page);
  const form = page.getByRole("form", { name: "Add a user" });
  await form.waitFor({ timeout: 10000 });
  // Inviting is the default: no password to type.
  assert.equal(await form.getByLabel("Password", { exact: true }).count(), 0, "no password field unless asked for");
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Name").fill("Ina Vited");
  await form.getByLabel("Role").selectOption("dealership_admin");
  const before = emailFiles();
  await form.getByRole("button", { name: "Invite by email" }).click();
  await page.getByRole("status").filter({ hasText: `Invitation sent to ${email}` }).waitFor({ timeout: 10000 });
  const row = page.locator(`tr[data-user="${email}"]`);
  await row.waitFor({ timeout: 10000 });
  await page.screenshot({ path: shotPath("admin-users-invited") });

  const invitation = await waitForEmail(email, /invited/i, { excluding: before });
  assert.match(invitation.text, /Hello Ina Vited/);
  const link = setPasswordLink(invitation);
  assert.ok(link.startsWith(`${env.adamUrl}/admin/#/set-password?token=`), `the link leads to this Adam: ${link}`);

  // "Resend invitation" sends another link (after a confirmation).
  const beforeResend = emailFiles();
  await row.getByRole("button", { name: "Resend invitation" }).click();
  await page.getByRole("status").filter({ hasText: `A new link was sent to ${email}` }).waitFor({ timeout: 10000 });
  assert.match(dialogs.at(-1) ?? "", new RegExp(`Email ${email} a new link`));
  const resent = await waitForEmail(email, /invited/i, { excluding: beforeResend });
  assert.notEqual(setPasswordLink(resent), link, "a new link");

  // The invited person opens the first link in a browser of their own.
  const invited = await launchBrowser(t, env.silenceWav);
  await invited.goto(link);
  // The page speaks of an invitation, not of a forgotten password.
  await invited.getByRole("heading", { name: "Welcome to Adam" }).waitFor({ timeout: 10000 });
  // The rules are shown and the form refuses what breaks them before asking Adam.
  await invited.getByLabel("New password").fill("short");
  await invited.getByLabel("Confirm password").fill("short");
  await invited.getByRole("button", { name: "Set password" }).click();
  assert.match(await invited.getByRole("alert").innerText(), /at least 8 characters/);
  await invited.getByLabel("New password").fill(password);
  await invited.getByLabel("Confirm password").fill(`${password}!`);
  await invited.getByRole("button", { name: "Set password" }).click();
  assert.match(await invited.getByRole("alert").innerText(), /two passwords differ/);
  await invited.getByLabel("Confirm password").fill(password);
  assert.equal(await invited.locator('.rules [data-met="true"]').count(), 3, "every rule is met");
  await invited.screenshot({ path: shotPath("admin-set-password") });
  await choosePassword(invited, password);

  await signIn(invited, { email, password });
  await invited.getByText(`${email} · admin`).waitFor({ timeout: 10000 });
  await invited.getByRole("heading", { level: 1, name: "Documents" }).waitFor();
});

test("Forgotten password: the emailed link sets a new password once; the link used again says it was already used", async (t) => {
  const { api, dealership } = await demoDealership();
  const email = `forgetful-${stamp}@example.com`;
  const oldPassword = "the forgotten password";
  const newPassword = "a brand new password";
  await api.request("POST", "/v1/users", { email, password: oldPassword, role: "user", dealership_id: dealership.id });

  // Asked for on the conversation page's sign-in.
  const page = await launchBrowser(t, env.silenceWav);
  await page.goto(`${env.adamUrl}/`);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Forgot password?" }).click();
  assert.equal(await page.getByLabel("Email").inputValue(), email, "the address typed is kept");
  const before = emailFiles();
  await page.getByRole("button", { name: "Email me a link" }).click();
  const sent = page.getByRole("status");
  await sent.waitFor({ timeout: 10000 });
  assert.equal(await sent.innerText(), `If an account exists for ${email}, we sent it a link to choose a new password.`);
  await page.screenshot({ path: shotPath("forgot-password-sent") });

  // An address without an account gets the very same answer.
  const nobody = `nobody-${stamp}@example.com`;
  await page.getByRole("button", { name: "Back to sign-in" }).click();
  await page.getByLabel("Email").fill(nobody);
  await page.getByRole("button", { name: "Forgot password?" }).click();
  await page.getByRole("button", { name: "Email me a link" }).click();
  await waitFor("the answer for an unknown address", async () => ((await page.getByRole("status").count()) ? page.getByRole("status").innerText() : null));
  assert.equal(await page.getByRole("status").innerText(), `If an account exists for ${nobody}, we sent it a link to choose a new password.`);
  // Asking too often for one address is throttled (3 an hour by default), and the page says
  // when to try again.
  let throttled = false;
  for (let attempt = 2; attempt <= 6 && !throttled; attempt++) {
    await page.getByRole("button", { name: "Send the link again" }).click();
    await page.getByRole("button", { name: "Email me a link" }).click();
    await waitFor("an answer", async () => (await page.getByRole("status").count()) || (await page.getByRole("alert").count()));
    throttled = (await page.getByRole("alert").count()) > 0;
  }
  assert.ok(throttled, "the 429 is explained");
  assert.match(await page.getByRole("alert").innerText(), /^Too many requests for this address\. Try again in \d+ (minutes?|s)\.$/);

  const reset = await waitForEmail(email, /reset/i, { excluding: before });
  const link = setPasswordLink(reset);
  const browser = await launchBrowser(t, env.silenceWav);
  await browser.goto(link);
  await browser.getByRole("heading", { name: "Choose a new password" }).waitFor({ timeout: 10000 });
  await choosePassword(browser, newPassword);
  await signIn(browser, { email, password: newPassword });
  // A `user` signs in, and the admin pages send them to the conversation.
  await browser.getByText(`${email} is not an administrator`).waitFor({ timeout: 10000 });
  const oldLogin = await fetch(`${env.adamUrl}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: oldPassword }),
  });
  assert.equal(oldLogin.status, 401, "the old password no longer works");

  // The same link a second time: refused, with a way to a new one.
  const again = await launchBrowser(t, env.silenceWav);
  await again.goto(link);
  await again.getByRole("button", { name: "Set password" }).waitFor({ timeout: 10000 });
  await again.getByLabel("New password").fill("yet another password");
  await again.getByLabel("Confirm password").fill("yet another password");
  await again.getByRole("button", { name: "Set password" }).click();
  await again.getByRole("heading", { name: "This link was already used" }).waitFor({ timeout: 10000 });
  await again.screenshot({ path: shotPath("admin-set-password-used") });
  await again.getByRole("button", { name: "Request a new link" }).click();
  await again.getByRole("heading", { name: "Forgot your password?" }).waitFor();
});

test("Settings: the lead email is saved and cleared, and an address Adam refuses is explained at the field", async (t) => {
  const { dealership } = await demoDealership();
  const api = await adminApi();
  const page = await launchBrowser(t, env.silenceWav);
  await page.goto(`${env.adamUrl}/admin/#/settings`);
  await signIn(page);
  const field = page.getByLabel("Lead email");
  await field.waitFor({ timeout: 10000 });
  const save = page.getByRole("button", { name: "Save settings" });

  // Passes the browser's check, not Adam's (an empty part between the dots).
  await field.fill("sales..leads@example.com");
  await save.click();
  await page.locator('[data-field-error="lead_email"]').waitFor({ timeout: 10000 });
  assert.match(await page.locator('[data-field-error="lead_email"]').innerText(), /must be an email address/i);
  assert.equal(await field.getAttribute("aria-invalid"), "true");
  assert.match(await page.getByRole("alert").innerText(), /^Not saved: Lead email: must be an email address\.$/);
  await page.screenshot({ path: shotPath("admin-settings-lead-email") });

  await field.fill(`leads-${stamp}@example.com`);
  await save.click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor({ timeout: 10000 });
  assert.equal((await api.request("GET", `/v1/dealerships/${dealership.id}`)).lead_email, `leads-${stamp}@example.com`);

  await field.fill("");
  await save.click();
  await waitFor("the lead email to be cleared", async () => (await api.request("GET", `/v1/dealerships/${dealership.id}`)).lead_email === null);
});
