//! Which dealership the admin pages show: a dealership_admin's own, or the one a super_admin
//! picked (sent as `?dealership_id=` where the API takes it).

import type { Api } from "../api/http";
import type { User } from "../api/types";

export interface Scope {
  api: Api;
  user: User;
  /** The dealership shown. */
  dealershipId: string;
}

/** `?dealership_id=…` for a super_admin, nothing for a dealership_admin (Adam uses theirs). */
export function scopeQuery(scope: Scope): string {
  return scope.user.role === "super_admin" ? `?dealership_id=${encodeURIComponent(scope.dealershipId)}` : "";
}

/** What every admin page receives. */
export interface PageProps {
  scope: Scope;
  /** A page that renames or changes dealerships refreshes the shell's list with this. */
  onDealershipsChanged: (dealerships: import("../api/types").Dealership[]) => void;
}
