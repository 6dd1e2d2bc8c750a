//! The signed-in user's tokens, kept in sessionStorage: they live as long as the tab and are
//! shared by the conversation page and the admin pages of the same origin.

import type { TokenPair } from "./types";

const KEY = "adam.tokens";

interface Stored {
  access: string;
  refresh: string;
}

/** Access and refresh tokens, with change notifications (sign-out, expiry). */
export class TokenStore {
  private listeners = new Set<() => void>();

  constructor(private readonly storage: Storage | null = safeSessionStorage()) {}

  get accessToken(): string | null {
    return this.read()?.access ?? null;
  }

  get refreshToken(): string | null {
    return this.read()?.refresh ?? null;
  }

  save(pair: TokenPair): void {
    this.storage?.setItem(KEY, JSON.stringify({ access: pair.access_token, refresh: pair.refresh_token } satisfies Stored));
    this.notify();
  }

  clear(): void {
    if (this.read() === null) return;
    this.storage?.removeItem(KEY);
    this.notify();
  }

  /** Calls `listener` whenever the tokens are saved or cleared; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private read(): Stored | null {
    try {
      const parsed = JSON.parse(this.storage?.getItem(KEY) ?? "null") as Stored | null;
      return parsed && typeof parsed.access === "string" && typeof parsed.refresh === "string" ? parsed : null;
    } catch {
      return null;
    }
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

function safeSessionStorage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled (privacy settings): signing in lasts as long as the page
  }
}
