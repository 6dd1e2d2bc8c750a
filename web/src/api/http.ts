//! JSON over HTTP against Adam: one error type for every refusal, bearer tokens with a
//! single shared refresh when the access token has expired.

import type { TokenPair } from "./types";
import type { TokenStore } from "./tokens";

/** A refusal from Adam (`{"error": {"code", "message", "field"?}}`) or a network failure. */
export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** Adam's `error.code` (`busy`, `forbidden`, …) or `network`. */
    readonly code: string,
    message: string,
    /** The offending field of a 422. */
    readonly field?: string,
    /** Seconds to wait before trying again (`Retry-After` of a 429). */
    readonly retryAfterSecs?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Turns a non-2xx response into an `ApiError`, whatever its body. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  const body: unknown = await res.json().catch(() => null);
  const error = errorFromBody(res.status, body);
  const retryAfter = Number(res.headers.get("Retry-After"));
  if (!Number.isFinite(retryAfter) || retryAfter <= 0) return error;
  return new ApiError(error.status, error.code, error.message, error.field, retryAfter);
}

/** Reads Adam's error shape out of a parsed body (also used for XMLHttpRequest uploads). */
export function errorFromBody(status: number, body: unknown): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  const code = typeof error?.code === "string" ? error.code : `http_${status}`;
  const message = typeof error?.message === "string" ? error.message : `request failed (${status})`;
  const field = typeof error?.field === "string" ? error.field : undefined;
  return new ApiError(status, code, message, field);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Send the signed-in user's access token (default true when signed in). */
  auth?: boolean;
}

/** A client for one Adam server (`baseUrl` "" for the page's own origin). */
export class Api {
  private refreshing: Promise<boolean> | null = null;

  constructor(
    readonly baseUrl: string,
    readonly tokens: TokenStore,
  ) {}

  /** Absolute URL of an API path on this server. */
  url(path: string): string {
    return new URL(path, this.baseUrl || window.location.origin).toString();
  }

  /** Calls Adam and parses the JSON answer; refreshes the access token once on a 401. */
  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    let res = await this.send(path, options);
    if (res.status === 401 && this.usesToken(options) && (await this.refresh())) {
      res = await this.send(path, options);
    }
    if (res.status === 401 && this.usesToken(options)) this.tokens.clear();
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** Exchanges the refresh token for a new pair; concurrent callers share one exchange
   *  (Adam treats a second use of the same refresh token as theft). */
  refresh(): Promise<boolean> {
    const refreshToken = this.tokens.refreshToken;
    if (!refreshToken) return Promise.resolve(false);
    this.refreshing ??= this.send("/v1/auth/refresh", { method: "POST", body: { refresh_token: refreshToken }, auth: false })
      .then(async (res) => {
        if (!res.ok) return false;
        this.tokens.save((await res.json()) as TokenPair);
        return true;
      })
      .catch(() => false)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /** The current access token, for requests made outside `request` (uploads). */
  authHeader(): Record<string, string> {
    const token = this.tokens.accessToken;
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  private usesToken(options: RequestOptions): boolean {
    return options.auth !== false && this.tokens.accessToken !== null;
  }

  private async send(path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (this.usesToken(options)) Object.assign(headers, this.authHeader());
    try {
      return await fetch(this.url(path), {
        method: options.method ?? "GET",
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "Adam could not be reached");
    }
  }
}
