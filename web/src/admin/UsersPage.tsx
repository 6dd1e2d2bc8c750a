//! The dealership's users: create, change role, disable, delete.

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
  const [error, setError] = useState<string | null>(null);

  const act = async (what: () => Promise<unknown>) => {
    setError(null);
    try {
      await what();
    } catch (err) {
      setError(describeError(err));
    }
    await users.reload();
  };

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Users</h1>
          <p class="admin-page__lead">People who sign in for this dealership. Admins manage it; users can talk to the assistant.</p>
        </div>
      </header>
      <CreateUser scope={scope} onCreated={() => void users.reload()} />
      {(error || users.error) && <p class="adam-notice adam-notice--error">{error ?? users.error}</p>}
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

function CreateUser({ scope, onCreated }: { scope: PageProps["scope"]; onCreated: () => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("user");
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      await scope.api.request("/v1/users", {
        method: "POST",
        body: {
          email: email.trim(),
          password,
          role,
          ...(name.trim() ? { display_name: name.trim() } : {}),
          ...(scope.user.role === "super_admin" ? { dealership_id: scope.dealershipId } : {}),
        },
      });
      setEmail("");
      setName("");
      setPassword("");
      onCreated();
    } catch (err) {
      setError(describeError(err));
    }
  };

  return (
    <form class="inline-form" onSubmit={submit}>
      <input class="adam-input" type="email" required placeholder="Email" aria-label="Email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
      <input class="adam-input" placeholder="Name (optional)" aria-label="Name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <input
        class="adam-input"
        type="password"
        required
        minLength={8}
        autocomplete="new-password"
        placeholder="Password (8+ characters)"
        aria-label="Password"
        value={password}
        onInput={(e) => setPassword(e.currentTarget.value)}
      />
      <select class="adam-input" aria-label="Role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
        <option value="user">{ROLE_NAMES.user}</option>
        <option value="dealership_admin">{ROLE_NAMES.dealership_admin}</option>
      </select>
      <button class="adam-button adam-button--primary" type="submit">
        Add user
      </button>
      {error && <p class="adam-notice adam-notice--error inline-form__error">{error}</p>}
    </form>
  );
}
