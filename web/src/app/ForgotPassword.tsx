//! "Forgot password?": asks Adam to email a link to choose a new password. The page answers
//! the same whatever the address, as Adam does, so it tells nobody which addresses have accounts.

import { useState } from "preact/hooks";
import { requestPasswordReset } from "../api/auth";
import { ApiError, type Api } from "../api/http";

export interface ForgotPasswordProps {
  api: Api;
  /** The address typed so far (on the sign-in form). */
  initialEmail?: string;
  /** Shown above the form, e.g. why the person needs a new link. */
  lead?: string;
  /** Back to the sign-in form. */
  onBack: () => void;
}

export function ForgotPassword({ api, initialEmail = "", lead, onBack }: ForgotPasswordProps) {
  const [email, setEmail] = useState(initialEmail);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const address = email.trim();
    try {
      await requestPasswordReset(api, address);
      setSentTo(address);
    } catch (err) {
      setError(resetError(err));
    } finally {
      setBusy(false);
    }
  };

  if (sentTo !== null) {
    return (
      <div class="card card--narrow" data-reset-sent>
        <h1>Check your email</h1>
        <p class="adam-notice adam-notice--info" role="status">
          If an account exists for <strong>{sentTo}</strong>, we sent it a link to choose a new password.
        </p>
        <p class="card__note">The link works once and for a limited time. Nothing after a few minutes? Check the spam folder, or send it again.</p>
        <div class="card__actions">
          <button class="adam-button adam-button--primary" type="button" onClick={onBack}>
            Back to sign-in
          </button>
          <button class="link-button" type="button" onClick={() => setSentTo(null)}>
            Send the link again
          </button>
        </div>
      </div>
    );
  }

  return (
    <div class="card card--narrow">
      <h1>Forgot your password?</h1>
      <p class="card__lead">{lead ?? "Enter the email address you sign in with: we email you a link to choose a new password."}</p>
      <form class="form" onSubmit={submit}>
        <label class="field">
          Email
          <input class="adam-input" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        {error && (
          <p class="adam-notice adam-notice--error" role="alert">
            {error}
          </p>
        )}
        <button class="adam-button adam-button--primary" type="submit" disabled={busy}>
          {busy ? "Sending…" : "Email me a link"}
        </button>
        <button class="link-button" type="button" onClick={onBack}>
          Back to sign-in
        </button>
      </form>
    </div>
  );
}

function resetError(error: unknown): string {
  if (!(error instanceof ApiError)) return "The link could not be requested.";
  if (error.code === "rate_limited") return `Too many requests for this address. ${tryAgainIn(error.retryAfterSecs)}`;
  if (error.code === "validation_failed") return "Enter a valid email address.";
  if (error.code === "network") return "Adam cannot be reached.";
  return error.message;
}

/** "Try again in 12 minutes." from a `Retry-After` in seconds. */
export function tryAgainIn(seconds: number | undefined): string {
  if (seconds === undefined) return "Try again later.";
  if (seconds < 60) return `Try again in ${Math.ceil(seconds)} s.`;
  const minutes = Math.ceil(seconds / 60);
  return `Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`;
}
