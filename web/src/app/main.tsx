//! The conversation page (`/`): a signed-in user, or a visitor with `?embed_key=pk_…`, talks
//! with the dealership's assistant. `?transport=webrtc|websocket` forces a transport.

import "../ui/controls.css";
import "../ui/conversation.css";
import "../ui/page.css";
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { currentUser, isAdmin, signOut } from "../api/auth";
import { Api } from "../api/http";
import { TokenStore } from "../api/tokens";
import type { Dealership, User } from "../api/types";
import { ConversationView } from "../ui/ConversationView";
import { Conversation, type TransportMode } from "../voice/conversation";
import type { Credentials } from "../voice/session";
import workletUrl from "../voice/capture-worklet.js?url";
import { Header } from "./Header";
import { SignIn } from "./SignIn";

declare global {
  interface Window {
    /** The live conversation, for diagnostics and the browser tests. */
    __adam?: Conversation;
  }
}

const params = new URLSearchParams(window.location.search);
const api = new Api("", new TokenStore());

function transportMode(value: string | null): TransportMode {
  return value === "webrtc" || value === "websocket" ? value : "auto";
}

function App() {
  const embedKey = params.get("embed_key");
  if (embedKey) {
    return (
      <>
        <Header subtitle="Assistant" />
        <main class="page-main">
          <Talk credentials={{ kind: "embed", embedKey }} />
        </main>
      </>
    );
  }
  return <Member />;
}

/** A signed-in user's conversation; a super_admin first picks the dealership. */
function Member() {
  const [user, setUser] = useState<User | null | "loading">(api.tokens.accessToken ? "loading" : null);
  const [dealerships, setDealerships] = useState<Dealership[]>([]);
  const [dealershipId, setDealershipId] = useState<string | null>(null);

  useEffect(() => {
    if (user === "loading") currentUser(api).then(setUser, () => setUser(null));
    return api.tokens.subscribe(() => {
      if (!api.tokens.accessToken) setUser(null);
    });
  }, []);

  useEffect(() => {
    if (user === null || user === "loading" || user.role !== "super_admin") return;
    api.request<Dealership[]>("/v1/dealerships").then((list) => {
      setDealerships(list);
      setDealershipId((current) => current ?? list[0]?.id ?? null);
    });
  }, [user]);

  const credentials = useMemo<Credentials | null>(() => {
    if (user === null || user === "loading") return null;
    if (user.role === "super_admin") return dealershipId ? { kind: "user", dealershipId } : null;
    return { kind: "user" };
  }, [user, dealershipId]);

  if (user === "loading") return <Header subtitle="Assistant" />;
  if (user === null) {
    return (
      <>
        <Header subtitle="Assistant" />
        <main class="page-main">
          <SignIn api={api} title="Talk to the assistant" lead="Sign in with your dealership account to start a voice conversation." onSignedIn={setUser} />
        </main>
      </>
    );
  }
  return (
    <>
      <Header subtitle="Assistant">
        {user.role === "super_admin" && dealerships.length > 0 && (
          <select class="adam-input page-header__select" aria-label="Dealership" value={dealershipId ?? ""} onChange={(e) => setDealershipId(e.currentTarget.value)}>
            {dealerships.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name}
              </option>
            ))}
          </select>
        )}
        <span class="page-header__who">{user.email}</span>
        {isAdmin(user) && (
          <a class="adam-button" href="/admin/">
            Admin
          </a>
        )}
        <button class="adam-button" type="button" onClick={() => void signOut(api)}>
          Sign out
        </button>
      </Header>
      <main class="page-main">{credentials && <Talk key={JSON.stringify(credentials)} credentials={credentials} />}</main>
    </>
  );
}

function Talk({ credentials }: { credentials: Credentials }) {
  const conversation = useMemo(
    () =>
      new Conversation({
        api,
        credentials,
        transport: transportMode(params.get("transport")),
        captureWorkletUrl: workletUrl,
        // A chunk of its own (with LiveKit), fetched only when the dealership's avatar is a video one.
        loadVideoAvatar: () => import("../voice/video-avatar"),
      }),
    [credentials],
  );
  useEffect(() => {
    window.__adam = conversation;
    return () => conversation.end();
  }, [conversation]);
  return (
    <div class="card">
      <ConversationView conversation={conversation} assistantName="Assistant" />
    </div>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
