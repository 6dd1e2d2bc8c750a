//! Signing in and out, and who is signed in.

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

/** Revokes the refresh token's family and forgets the tokens; never fails. */
export async function signOut(api: Api): Promise<void> {
  const refreshToken = api.tokens.refreshToken;
  api.tokens.clear();
  if (refreshToken) {
    await api
      .request("/v1/auth/logout", { method: "POST", body: { refresh_token: refreshToken }, auth: false })
      .catch(() => undefined);
  }
}

/** Whether this role may use the admin pages. */
export function isAdmin(user: User): boolean {
  return user.role === "super_admin" || user.role === "dealership_admin";
}
