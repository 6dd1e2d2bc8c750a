//! The conversation UI shared by the page and the widget: avatar, status, transcript, notices,
//! typed questions and the mute / end / start controls.

import { useCallback, useState } from "preact/hooks";
import type { Conversation, ConversationState } from "../voice/conversation";
import { Avatar, stateLabel, VideoAvatarView } from "./Avatar";
import { EndIcon, MicIcon } from "./icons";
import { Transcript } from "./Transcript";
import { useStore } from "./useStore";

export interface ConversationViewProps {
  conversation: Conversation;
  /** Shown above the assistant's lines; the dealership's `avatar.name` wins. */
  assistantName: string;
  /** Widget: smaller avatar, status on one line. */
  compact?: boolean;
}

export function ConversationView({ conversation, assistantName, compact = false }: ConversationViewProps) {
  const state = useStore(conversation.state);
  const viseme = useCallback(() => conversation.currentViseme(), [conversation]);
  const name = typeof state.avatarSettings["name"] === "string" ? (state.avatarSettings["name"] as string) : assistantName;
  const live = state.phase === "live";

  return (
    <section class={`adam-convo${compact ? " adam-convo--compact" : ""}`} data-phase={state.phase}>
      <div class="adam-convo__stage">
        {state.avatarVideo ? (
          <VideoAvatarView state={state.avatar} stream={state.avatarVideo} label={name} />
        ) : (
          <Avatar state={state.avatar} viseme={viseme} settings={state.avatarSettings} label={name} />
        )}
        <StatusLine state={state} />
      </div>
      <div class="adam-convo__talk">
        <Transcript
          lines={state.lines}
          assistantName={name}
          placeholder={live ? "Go ahead, I'm listening. Ask about opening hours, prices, cars in stock…" : "Start a conversation and speak: the assistant answers out loud."}
        />
        {state.notice && (
          <p class={`adam-notice adam-notice--${state.notice.tone}`} role={state.notice.tone === "error" ? "alert" : "status"}>
            {state.notice.text}
          </p>
        )}
        {live && <Composer onAsk={(text) => conversation.ask(text)} />}
        <Controls conversation={conversation} state={state} />
        {state.recordingNotice && (
          <p class="adam-recording" role="note" data-recording-notice="">
            <span class="adam-recording__dot" aria-hidden="true" />
            {state.recordingNotice}
          </p>
        )}
      </div>
    </section>
  );
}

function StatusLine({ state }: { state: ConversationState }) {
  const latency = state.lastMetrics?.voice_to_voice_ms ?? null;
  const phaseText: Record<ConversationState["phase"], string> = {
    idle: "Not connected",
    connecting: "Connecting…",
    live: state.userSpeaking ? "Hearing you" : stateLabel(state.avatar),
    reconnecting: "Reconnecting…",
    ended: "Conversation ended",
  };
  return (
    <div class="adam-status">
      <span class={`adam-pill adam-pill--${state.phase === "live" ? state.avatar : state.phase}`}>
        <span class="adam-pill__dot" aria-hidden="true" />
        {phaseText[state.phase]}
      </span>
      {state.transport && (
        <span class="adam-pill adam-pill--quiet" data-transport={state.transport} title="How the audio travels">
          {state.transport === "webrtc" ? "WebRTC" : "WebSocket"}
        </span>
      )}
      {state.lastMetrics && (
        <span class="adam-pill adam-pill--quiet" data-latency={latency ?? ""} title="From the end of your question to the first sound of the answer">
          {latency === null ? "Typed question" : `Reply in ${Math.round(latency)} ms`}
          {state.lastMetrics.cache_hit ? " · cached" : ""}
        </span>
      )}
    </div>
  );
}

function Composer({ onAsk }: { onAsk: (text: string) => void }) {
  const [text, setText] = useState("");
  return (
    <form
      class="adam-composer"
      onSubmit={(event) => {
        event.preventDefault();
        onAsk(text);
        setText("");
      }}
    >
      <input
        class="adam-input"
        type="text"
        value={text}
        maxLength={4000}
        placeholder="Or type a question…"
        aria-label="Type a question"
        onInput={(event) => setText(event.currentTarget.value)}
      />
      <button class="adam-button" type="submit" disabled={!text.trim()}>
        Send
      </button>
    </form>
  );
}

function Controls({ conversation, state }: { conversation: Conversation; state: ConversationState }) {
  const active = state.phase === "live" || state.phase === "connecting" || state.phase === "reconnecting";
  if (!active) {
    return (
      <div class="adam-controls">
        <button class="adam-button adam-button--primary adam-button--wide" type="button" onClick={() => void conversation.start()}>
          <MicIcon off={false} />
          {state.phase === "ended" ? "Start a new conversation" : "Start conversation"}
        </button>
      </div>
    );
  }
  return (
    <div class="adam-controls">
      <button
        class={`adam-button adam-button--round${state.muted ? " adam-button--on" : ""}`}
        type="button"
        aria-pressed={state.muted}
        onClick={() => conversation.setMuted(!state.muted)}
      >
        <MicIcon off={state.muted} />
        {state.muted ? "Unmute" : "Mute"}
      </button>
      <button class="adam-button adam-button--round adam-button--danger" type="button" onClick={() => conversation.end()}>
        <EndIcon />
        End
      </button>
    </div>
  );
}
