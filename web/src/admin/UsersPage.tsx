//! The dealership's users: invite (or create with a password), resend an invitation, change
//! role, disable, delete.

import { useState } from "preact/hooks";
import type { Role, User } from "../api/types";
import { formatDateTime } from "./format";
import type { PageProps } from "./scope";
import { describeError, useResource } from "./useResource";

const ROLE_NAMES: Record<Role, string> = { super_admin: "Super admin", dealership_admin: "Admin", user: "User" };

export function UsersPage({ scope }: PageProps) {
  const { api, user: me, dealershipId } = scope;
  // A super_admin's list holds every dealership's users: show the picked one's.
  const users = useResource(
    async () => (await api.request<User[]>("/v1/users")).filter((u) => u.dealership_id === dealershipId),
    dealershipId,
  );
  const [message, setMessage] = useState<{ tone: "error" | "info"; text: string } | null>(null);

  /** Runs an action on a user, says `done` when it worked, then reloads the list. */
  const act = async (what: () => Promise<unknown>, done?: string) => {
    setMessage(null);
    try {
      await what();
      if (done) setMessage({ tone: "info", text: done });
    } catch (err) {
      setMessage({ tone: "error", text: describeError(err) });
    }
    await users.reload();
  };

  // Adam does not say who has chosen a password yet: any user can be sent a new link.
  const resendInvitation = (u: User) => {
    const confirmed = window.confirm(
      `Email ${u.email} a new link to choose their password?\n\nFor an invitation that expired or a forgotten password. A password they already have keeps working until they use the link.`,
    );
    if (confirmed) void act(() => api.request(`/v1/users/${u.id}/invite`, { method: "POST" }), `A new link was sent to ${u.email}.`);
  };

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Users</h1>
          <p class="admin-page__lead">People who sign in for this dealership. Admins manage it; users can talk to the assistant.</p>
        </div>
      </header>
      <CreateUser
        scope={scope}
        onCreated={(done) => {
          setMessage({ tone: "info", text: done });
          void users.reload();
        }}
      />
      {message && (
        <p class={`adam-notice adam-notice--${message.tone}`} role={message.tone === "error" ? "alert" : "status"}>
          {message.text}
        </p>
      )}
      {users.error && <p class="adam-notice adam-notice--error">{users.error}</p>}
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>Status</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.data?.length === 0 && (
              <tr>
                <td colSpan={5} class="table__empty">
                  No users in this dealership yet: add its admins and staff above.
                </td>
              </tr>
            )}
            {users.data?.map((u) => {
              const self = u.id === me.id;
              return (
                <tr key={u.id} data-user={u.email}>
                  <td>
                    <span class="table__primary">{u.display_name || u.email}</span>
                    <span class="table__secondary">{u.email}</span>
                  </td>
                  <td>
                    <select
                      class="adam-input adam-input--small"
                      value={u.role}
                      disabled={self}
                      aria-label={`Role of ${u.email}`}
                      onChange={(e) => void act(() => api.request(`/v1/users/${u.id}`, { method: "PATCH", body: { role: e.currentTarget.value } }))}
                    >
                      <option value="dealership_admin">{ROLE_NAMES.dealership_admin}</option>
                      <option value="user">{ROLE_NAMES.user}</option>
                    </select>
                  </td>
                  <td>{u.disabled ? <span class="badge badge--failed">disabled</span> : <span class="badge badge--ready">active</span>}</td>
                  <td>{formatDateTime(u.created_at)}</td>
                  <td class="table__actions">
                    {!self && (
                      <>
                        {!u.disabled && (
                          <button class="adam-button adam-button--small" type="button" onClick={() => resendInvitation(u)}>
                            Resend invitation
                          </button>
                        )}
                        <button
                          class="adam-button adam-button--small"
                          type="button"
                          onClick={() => void act(() => api.request(`/v1/users/${u.id}`, { method: "PATCH", body: { disabled: !u.disabled } }))}
                        >
                          {u.disabled ? "Enable" : "Disable"}
                        </button>
                        <button
                          class="adam-button adam-button--small adam-button--danger"
                          type="button"
                          onClick={() => {
                            if (window.confirm(`Delete ${u.email}?`)) void act(() => api.request(`/v1/users/${u.id}`, { method: "DELETE" }));
                          }}
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** Adds a user: by default Adam emails them an invitation to choose their own password;
 *  "Set a password now" gives them one instead (to pass on by other means). */
function CreateUser({ scope, onCreated }: { scope: PageProps["scope"]; onCreated: (done: string) => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("user");
  const [withPassword, setWithPassword] = useState(false);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const address = email.trim();
    setBusy(true);
    try {
      await scope.api.request("/v1/users", {
        method: "POST",
        body: {
          email: address,
          role,
          ...(withPassword ? { password } : { invite: true }),
          ...(name.trim() ? { display_name: name.trim() } : {}),
          ...(scope.user.role === "super_admin" ? { dealership_id: scope.dealershipId } : {}),
        },
      });
      setEmail("");
      setName("");
      setPassword("");
      onCreated(withPassword ? `${address} can sign in now with the password you set.` : `Invitation sent to ${address}.`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="inline-form inline-form--user" onSubmit={submit} aria-label="Add a user">
      <input class="adam-input" type="email" required placeholder="Email" aria-label="Email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
      <input class="adam-input" placeholder="Name (optional)" aria-label="Name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <select class="adam-input" aria-label="Role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
        <option value="user">{ROLE_NAMES.user}</option>
        <option value="dealership_admin">{ROLE_NAMES.dealership_admin}</option>
      </select>
      <button class="adam-button adam-button--primary" type="submit" disabled={busy}>
        {withPassword ? "Add user" : "Invite by email"}
      </button>
      <div class="inline-form__options">
        <label class="check">
          <input type="checkbox" checked={withPassword} onChange={(e) => setWithPassword(e.currentTarget.checked)} />
          Set a password now
        </label>
        {withPassword ? (
          <input
            class="adam-input inline-form__password"
            type="password"
            required
            minLength={8}
            autocomplete="new-password"
            placeholder="Password (8+ characters)"
            aria-label="Password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        ) : (
          <span class="inline-form__hint">They get an email with a link to choose their own password.</span>
        )}
      </div>
      {error && <p class="adam-notice adam-notice--error inline-form__error">{error}</p>}
    </form>
  );
}
