//! Email and password sign-in, shared by the conversation page and the admin pages, with the
//! way to a forgotten password.

import { useState } from "preact/hooks";
import { signIn } from "../api/auth";
import { ApiError, type Api } from "../api/http";
import type { User } from "../api/types";
import { ForgotPassword } from "./ForgotPassword";

export interface SignInProps {
  api: Api;
  title: string;
  lead: string;
  onSignedIn: (user: User) => void;
  /** Shown above the form (e.g. "your password is set"). */
  notice?: string | null;
}

export function SignIn({ api, title, lead, onSignedIn, notice }: SignInProps) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [forgot, setForgot] = useState(false);

  if (forgot) return <ForgotPassword api={api} initialEmail={email.trim()} onBack={() => setForgot(false)} />;

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(api, email.trim(), password));
    } catch (err) {
      setError(signInError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="card card--narrow">
      <h1>{title}</h1>
      <p class="card__lead">{lead}</p>
      {notice && (
        <p class="adam-notice adam-notice--info card__notice" role="status">
          {notice}
        </p>
      )}
      <form class="form" onSubmit={submit}>
        <label class="field">
          Email
          <input class="adam-input" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label class="field">
          Password
          <input
            class="adam-input"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="adam-notice adam-notice--error" role="alert">
            {error}
          </p>
        )}
        <button class="adam-button adam-button--primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <button class="link-button" type="button" onClick={() => setForgot(true)}>
          Forgot password?
        </button>
      </form>
    </div>
  );
}

function signInError(error: unknown): string {
  if (!(error instanceof ApiError)) return "Sign-in failed.";
  if (error.code === "invalid_credentials") return "Wrong email or password.";
  if (error.code === "rate_limited") return "Too many attempts. Wait a moment and try again.";
  if (error.code === "network") return "Adam cannot be reached.";
  return error.message;
}
