//! The admin pages' shell: sign-in, the set-password page of the emailed links, the dealership
//! picker of a super_admin, the navigation and the page of the current `#/route`.

import { useEffect, useState } from "preact/hooks";
import { currentUser, isAdmin, signOut } from "../api/auth";
import type { Api } from "../api/http";
import type { Dealership, User } from "../api/types";
import { Header } from "../app/Header";
import { SignIn } from "../app/SignIn";
import { CachePage } from "./CachePage";
import { DocumentsPage } from "./DocumentsPage";
import { KnowledgeGapsPage } from "./KnowledgeGapsPage";
import type { Scope } from "./scope";
import { SessionsPage } from "./SessionsPage";
import { SetPasswordPage } from "./SetPasswordPage";
import { SettingsPage } from "./SettingsPage";
import { UsagePage } from "./UsagePage";
import { UsersPage } from "./UsersPage";

const ROUTES = [
  { path: "documents", title: "Documents", page: DocumentsPage },
  { path: "gaps", title: "Knowledge gaps", page: KnowledgeGapsPage },
  { path: "users", title: "Users", page: UsersPage },
  { path: "sessions", title: "Sessions", page: SessionsPage },
  { path: "usage", title: "Usage", page: UsagePage },
  { path: "settings", title: "Settings", page: SettingsPage },
  { path: "cache", title: "Cache", page: CachePage },
] as const;

/** The fragment's route: `#/users` → `{path: "users"}`, `#/set-password?token=x` → its params too. */
function hashRoute(): { path: string; params: URLSearchParams } {
  const [path = "", query = ""] = window.location.hash.replace(/^#\/?/, "").split("?", 2);
  return { path, params: new URLSearchParams(query) };
}

/** The admin section at `path`; Documents by default. */
function section(path: string) {
  return ROUTES.find((route) => route.path === path) ?? ROUTES[0];
}

/** Follows `hashchange`. */
function useHashRoute() {
  const [route, setRoute] = useState(hashRoute);
  useEffect(() => {
    const onHash = () => setRoute(hashRoute());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

/** Leaves the set-password link for the sign-in form, replacing it in the history: the used
 *  link's token should not linger one "back" away. */
function leaveForSignIn() {
  history.replaceState(null, "", window.location.pathname + window.location.search);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export function AdminApp({ api }: { api: Api }) {
  const [user, setUser] = useState<User | null | "loading">(api.tokens.accessToken ? "loading" : null);
  const [notice, setNotice] = useState<string | null>(null);
  const route = useHashRoute();

  useEffect(() => {
    if (user === "loading") currentUser(api).then(setUser, () => setUser(null));
    return api.tokens.subscribe(() => {
      if (!api.tokens.accessToken) setUser(null);
    });
  }, []);

  // An emailed link works whoever is signed in in this tab (the link is the proof).
  if (route.path === "set-password") {
    const token = route.params.get("token");
    const done = async () => {
      // Setting a password signs its user out everywhere; sign in again, as them.
      if (api.tokens.refreshToken) await signOut(api);
      setNotice("Your password is set. Sign in with your email address and the new password.");
      leaveForSignIn();
    };
    return (
      <>
        <Header subtitle="Admin" />
        <main class="page-main">
          <SetPasswordPage key={token} api={api} token={token} purpose={route.params.get("for")} onDone={() => void done()} onSignIn={leaveForSignIn} />
        </main>
      </>
    );
  }
  if (user === "loading") return <Header subtitle="Admin" />;
  if (user === null) {
    return (
      <>
        <Header subtitle="Admin" />
        <main class="page-main">
          <SignIn
            api={api}
            title="Adam admin"
            lead="Sign in to manage documents, users, sessions and settings."
            notice={notice}
            onSignedIn={(signedIn) => {
              setNotice(null);
              setUser(signedIn);
            }}
          />
        </main>
      </>
    );
  }
  if (!isAdmin(user)) {
    return (
      <>
        <Header subtitle="Admin" />
        <main class="page-main">
          <div class="card card--narrow">
            <h1>Administrators only</h1>
            <p class="card__lead">{user.email} is not an administrator.</p>
            <a class="adam-button" href="/">
              Talk to the assistant
            </a>{" "}
            <button class="adam-button" type="button" onClick={() => void signOut(api)}>
              Sign out
            </button>
          </div>
        </main>
      </>
    );
  }
  return <Shell api={api} user={user} />;
}

function Shell({ api, user }: { api: Api; user: User }) {
  const route = section(useHashRoute().path);
  const [dealerships, setDealerships] = useState<Dealership[]>([]);
  const [picked, setPicked] = useState<string | null>(user.dealership_id);

  useEffect(() => {
    api.request<Dealership[]>("/v1/dealerships").then((list) => {
      setDealerships(list);
      setPicked((current) => current ?? list[0]?.id ?? null);
    });
  }, []);

  const scope: Scope | null = picked ? { api, user, dealershipId: picked } : null;
  const Page = route.page;
  const dealershipName = dealerships.find((d) => d.id === picked)?.name;

  return (
    <>
      <Header subtitle="Admin">
        {user.role === "super_admin" && dealerships.length > 0 ? (
          <select class="adam-input page-header__select" aria-label="Dealership" value={picked ?? ""} onChange={(e) => setPicked(e.currentTarget.value)}>
            {dealerships.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name}
              </option>
            ))}
          </select>
        ) : (
          dealershipName && <span class="page-header__who">{dealershipName}</span>
        )}
        <span class="page-header__who">
          {user.email} · {user.role === "super_admin" ? "super admin" : "admin"}
        </span>
        <a class="adam-button" href="/">
          Conversation
        </a>
        <button class="adam-button" type="button" onClick={() => void signOut(api)}>
          Sign out
        </button>
      </Header>
      <div class="admin">
        <nav class="admin-nav" aria-label="Admin sections">
          {ROUTES.map((r) => (
            <a key={r.path} href={`#/${r.path}`} class={r.path === route.path ? "admin-nav__link admin-nav__link--active" : "admin-nav__link"} aria-current={r.path === route.path ? "page" : undefined}>
              {r.title}
            </a>
          ))}
        </nav>
        <main class="admin-main">
          {scope ? <Page key={`${route.path}:${scope.dealershipId}`} scope={scope} onDealershipsChanged={setDealerships} /> : <p class="admin-empty">No dealership yet.</p>}
        </main>
      </div>
    </>
  );
}
