//! The embeddable widget (`/widget.js`). A dealership pastes
//!   <script src="https://ADAM_HOST/widget.js" data-embed-key="pk_…" async></script>
//! into its site: a floating button opens a panel with the assistant. Everything lives in a
//! Shadow DOM, so the host page's CSS cannot reach it. Adam is called at the script's own
//! origin (or `data-server`), with the embed key; Adam checks the page's Origin against the
//! dealership's allowed origins.

import { render } from "preact";
import { Api } from "../api/http";
import { TokenStore } from "../api/tokens";
import controlsCss from "../ui/controls.css?inline";
import conversationCss from "../ui/conversation.css?inline";
import { Conversation, type TransportMode } from "../voice/conversation";
import type { VideoAvatarModule } from "../voice/video-avatar";
import workletSource from "../voice/capture-worklet.js?raw";
import { Widget } from "./Widget";
import widgetCss from "./widget.css?inline";

// Read while this script runs: `document.currentScript` is null afterwards.
const script = document.currentScript as HTMLScriptElement | null;

function mount(tag: HTMLScriptElement): void {
  const embedKey = tag.dataset["embedKey"];
  if (!embedKey) {
    console.error("Adam widget: the script tag needs data-embed-key=\"pk_…\"");
    return;
  }
  const server = tag.dataset["server"] ?? new URL(tag.src).origin;
  const transport = tag.dataset["transport"];
  const conversation = new Conversation({
    api: new Api(server, new TokenStore(null)),
    credentials: { kind: "embed", embedKey },
    transport: transport === "webrtc" || transport === "websocket" ? (transport as TransportMode) : "auto",
    // The worklet cannot be loaded from Adam's origin without CORS; a Blob URL works wherever
    // the host page's CSP allows blob: workers (the default).
    captureWorkletUrl: URL.createObjectURL(new Blob([workletSource], { type: "text/javascript" })),
    loadVideoAvatar: () => loadVideoAvatarScript(`${server}/widget-livekit.js`),
  });

  // A custom element, reset inline: the site's rules for `div` and the like cannot match the
  // host, and nothing it inherits reaches inside.
  const host = document.createElement("adam-widget");
  host.setAttribute("data-adam-widget", "");
  host.style.setProperty("all", "initial", "important");
  const shadow = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = [controlsCss, conversationCss, widgetCss].join("\n");
  const root = document.createElement("div");
  root.className = "adam-root";
  shadow.append(style, root);
  document.body.append(host);
  render(<Widget conversation={conversation} />, root);
}

declare global {
  interface Window {
    /** Set by widget-livekit.js (vite.livekit.config.ts). */
    AdamVideoAvatar?: VideoAvatarModule;
  }
}

let videoAvatar: Promise<VideoAvatarModule> | null = null;

/** The video avatar and LiveKit: a script of its own from Adam (a classic script, like this
 *  one, so the site's CSP needs nothing more), loaded the first time a video avatar comes. */
function loadVideoAvatarScript(src: string): Promise<VideoAvatarModule> {
  videoAvatar ??= new Promise<VideoAvatarModule>((resolve, reject) => {
    if (window.AdamVideoAvatar) return resolve(window.AdamVideoAvatar);
    const tag = document.createElement("script");
    tag.src = src;
    tag.async = true;
    tag.onload = () => (window.AdamVideoAvatar ? resolve(window.AdamVideoAvatar) : reject(new Error(`${src} did not define AdamVideoAvatar`)));
    tag.onerror = () => reject(new Error(`${src} could not be loaded`));
    document.head.append(tag);
  }).catch((error: unknown) => {
    videoAvatar = null; // try again with the next avatar
    throw error;
  });
  return videoAvatar;
}

if (script) {
  const tag = script;
  if (document.body) mount(tag);
  else document.addEventListener("DOMContentLoaded", () => mount(tag), { once: true });
} else {
  console.error("Adam widget: load widget.js with a classic <script src> tag");
}
