//! `#/set-password?token=…`: the page the invitation and password-reset emails link to. No
//! sign-in needed: the link's one-time token is the proof. A refused link (used, expired,
//! invalid) says why and offers a new one.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, passwordProblem, setPasswordWithToken } from "../api/auth";
import { ApiError, type Api } from "../api/http";
import { ForgotPassword, tryAgainIn } from "../app/ForgotPassword";

/** Why Adam refused a link, in the words of its error code. */
type Refusal = "token_used" | "token_expired" | "token_invalid";

const REFUSALS: Record<Refusal, { title: string; text: string }> = {
  token_used: {
    title: "This link was already used",
    text: "Each link works once. If you chose your password with it, sign in. Otherwise request a new link.",
  },
  token_expired: {
    title: "This link has expired",
    text: "Links work for a limited time. Request a new one, or ask your administrator to send a new invitation.",
  },
  token_invalid: {
    title: "This link is not valid",
    text: "It may be incomplete (copy the whole link from the email), or it was replaced when the password changed since. Request a new one.",
  },
};

export interface SetPasswordPageProps {
  api: Api;
  /** The link's token (`?token=` in the fragment), when there is one. */
  token: string | null;
  /** What the link was sent for (`&for=`): an invitation or a password reset. */
  purpose: string | null;
  /** The password is set: go to sign-in. */
  onDone: () => void;
  /** Leave for the sign-in form. */
  onSignIn: () => void;
}

/** The page's heading and lead, in the words of the email it came from. */
function intro(purpose: string | null): { title: string; lead: string } {
  switch (purpose) {
    case "invite":
      return {
        title: "Welcome to Adam",
        lead: "You were invited to your dealership's Adam. Choose a password for your account; you then sign in with your email address and this password.",
      };
    case "reset":
      return {
        title: "Choose a new password",
        lead: "Your old password stops working once you save the new one, and you are signed out everywhere. You then sign in with your email address and the new password.",
      };
    default:
      return {
        title: "Choose your password",
        lead: "For your Adam account, from the invitation or password-reset email. You then sign in with your email address and this password.",
      };
  }
}

export function SetPasswordPage({ api, token, purpose, onDone, onSignIn }: SetPasswordPageProps) {
  const [password, setPassword] = useState("");
  const [confirmation, setConfirmation] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(token ? null : "token_invalid");
  const [requesting, setRequesting] = useState(false);
  const [busy, setBusy] = useState(false);

  if (requesting) {
    return <ForgotPassword api={api} lead="Enter the email address of your account: we email you a new link to choose your password." onBack={onSignIn} />;
  }
  if (refusal) {
    const { title, text } = REFUSALS[refusal];
    return (
      <div class="card card--narrow" data-refusal={refusal}>
        <h1>{title}</h1>
        <p class="adam-notice adam-notice--error card__notice" role="alert">
          {text}
        </p>
        <div class="card__actions">
          <button class="adam-button adam-button--primary" type="button" onClick={() => setRequesting(true)}>
            Request a new link
          </button>
          <button class="adam-button" type="button" onClick={onSignIn}>
            Sign in
          </button>
        </div>
      </div>
    );
  }

  const lengthOk = [...password].length >= PASSWORD_MIN_CHARS;
  const bytesOk = new TextEncoder().encode(password).length <= PASSWORD_MAX_BYTES;
  const matches = password.length > 0 && password === confirmation;

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const problem = passwordProblem(password);
    if (problem) return setError(problem);
    if (password !== confirmation) return setError("The two passwords differ: type the same password twice.");
    setBusy(true);
    try {
      await setPasswordWithToken(api, token ?? "", password);
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.code in REFUSALS) setRefusal(err.code as Refusal);
      else setError(confirmError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="card card--narrow">
      <h1>{intro(purpose).title}</h1>
      <p class="card__lead">{intro(purpose).lead}</p>
      <form class="form" onSubmit={submit}>
        <label class="field">
          New password
          <input
            class="adam-input"
            type="password"
            autocomplete="new-password"
            required
            value={password}
            aria-describedby="password-rules"
            onInput={(e) => {
              setPassword(e.currentTarget.value);
              setError(null);
            }}
          />
        </label>
        <label class="field">
          Confirm password
          <input
            class="adam-input"
            type="password"
            autocomplete="new-password"
            required
            value={confirmation}
            onInput={(e) => {
              setConfirmation(e.currentTarget.value);
              setError(null);
            }}
          />
        </label>
        <ul class="rules" id="password-rules" aria-label="Password rules">
          <Rule met={lengthOk}>At least {PASSWORD_MIN_CHARS} characters</Rule>
          <Rule met={password.length > 0 && bytesOk}>At most {PASSWORD_MAX_BYTES} bytes (fewer characters with accents or emoji)</Rule>
          <Rule met={matches}>Both entries match</Rule>
        </ul>
        {error && (
          <p class="adam-notice adam-notice--error" role="alert">
            {error}
          </p>
        )}
        <button class="adam-button adam-button--primary" type="submit" disabled={busy}>
          {busy ? "Saving…" : "Set password"}
        </button>
      </form>
    </div>
  );
}

function Rule({ met, children }: { met: boolean; children: ComponentChildren }) {
  return (
    <li class={met ? "rules__rule rules__rule--met" : "rules__rule"} data-met={met}>
      {children}
    </li>
  );
}

function confirmError(error: unknown): string {
  if (!(error instanceof ApiError)) return "The password could not be set.";
  if (error.field === "password") return `Password: ${error.message}.`;
  if (error.code === "rate_limited") return `Too many attempts. ${tryAgainIn(error.retryAfterSecs)}`;
  if (error.code === "network") return "Adam cannot be reached.";
  return error.message;
}
