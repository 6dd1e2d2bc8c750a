//! Signing in and out, who is signed in, and setting a forgotten password.

import type { Api } from "./http";
import type { TokenPair, User } from "./types";

/** Signs in with email and password and keeps the tokens. */
export async function signIn(api: Api, email: string, password: string): Promise<User> {
  const pair = await api.request<TokenPair>("/v1/auth/login", {
    method: "POST",
    body: { email, password },
    auth: false,
  });
  api.tokens.save(pair);
  return currentUser(api);
}

/** The signed-in user (`GET /v1/me`). */
export function currentUser(api: Api): Promise<User> {
  return api.request<User>("/v1/me");
}

/** Revokes the refresh token's family and the access token (Adam refuses it from then on)
 *  and forgets the tokens; never fails. */
export async function signOut(api: Api): Promise<void> {
  const refreshToken = api.tokens.refreshToken;
  const access = api.authHeader();
  api.tokens.clear();
  if (refreshToken || access.Authorization) {
    await api
      .request("/v1/auth/logout", { method: "POST", body: refreshToken ? { refresh_token: refreshToken } : {}, headers: access, auth: false })
      .catch(() => undefined);
  }
}

/** Whether this role may use the admin pages. */
export function isAdmin(user: User): boolean {
  return user.role === "super_admin" || user.role === "dealership_admin";
}

/** Asks Adam to email a password-reset link (`POST /v1/auth/password-reset`). The answer is
 *  the same whether or not an account uses the address. */
export async function requestPasswordReset(api: Api, email: string): Promise<void> {
  await api.request("/v1/auth/password-reset", { method: "POST", body: { email }, auth: false });
}

/** Sets a password with the token of an invitation or password-reset link. */
export async function setPasswordWithToken(api: Api, token: string, password: string): Promise<void> {
  await api.request("/v1/auth/password-reset/confirm", { method: "POST", body: { token, password }, auth: false });
}

/** The password rules Adam applies (8 characters to 72 bytes). */
export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_BYTES = 72;

/** What is wrong with `password` by those rules, or null. */
export function passwordProblem(password: string): string | null {
  if ([...password].length < PASSWORD_MIN_CHARS) return `Use at least ${PASSWORD_MIN_CHARS} characters.`;
  if (new TextEncoder().encode(password).length > PASSWORD_MAX_BYTES) return `Too long: at most ${PASSWORD_MAX_BYTES} bytes (fewer characters with accents or emoji).`;
  return null;
}
