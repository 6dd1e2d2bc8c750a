//! Conversations: the live ones (which an admin may end) and past ones, each with its
//! transcript, sources and latency.

import { useState } from "preact/hooks";
import type { SessionDetail, SessionSummary } from "../api/types";
import { StatusBadge } from "./DocumentsPage";
import { formatDateTime, formatDuration, formatMs } from "./format";
import type { PageProps } from "./scope";
import { describeError, useResource } from "./useResource";

const LIVE_POLL_MS = 5000;

export function SessionsPage({ scope }: PageProps) {
  const { api, dealershipId } = scope;
  const sessions = useResource(
    async () => (await api.request<SessionSummary[]>("/v1/sessions?limit=200")).filter((s) => s.dealership_id === dealershipId),
    dealershipId,
    (list) => (list.some((s) => s.ended_at === null) ? LIVE_POLL_MS : null),
  );
  const [openId, setOpenId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const live = sessions.data?.filter((s) => s.ended_at === null) ?? [];
  const past = sessions.data?.filter((s) => s.ended_at !== null) ?? [];

  const end = async (session: SessionSummary) => {
    const liveNow = session.ended_at === null;
    if (!window.confirm(liveNow ? "End this conversation now? The customer is disconnected." : "Delete this conversation and its transcript?")) return;
    setError(null);
    try {
      await api.request(`/v1/sessions/${session.id}`, { method: "DELETE" });
      if (!liveNow && openId === session.id) setOpenId(null);
    } catch (err) {
      setError(describeError(err));
    }
    await sessions.reload();
  };

  const table = (list: SessionSummary[], empty: string) => (
    <div class="table-wrap">
      <table class="table">
        <thead>
          <tr>
            <th>Started</th>
            <th>Who</th>
            <th>Transport</th>
            <th>Duration</th>
            <th>Ended because</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.length === 0 && (
            <tr>
              <td colSpan={6} class="table__empty">
                {empty}
              </td>
            </tr>
          )}
          {list.map((s) => (
            <tr key={s.id} class={openId === s.id ? "table__row--open" : ""} data-session={s.id}>
              <td>{formatDateTime(s.started_at)}</td>
              <td>{s.user_id ? "Signed-in user" : "Website visitor"}</td>
              <td>{s.transport === "webrtc" ? "WebRTC" : "WebSocket"}</td>
              <td>{formatDuration(s.started_at, s.ended_at)}</td>
              <td>{s.end_reason ?? (s.ended_at ? "—" : <span class="badge badge--processing">live</span>)}</td>
              <td class="table__actions">
                <button class="adam-button adam-button--small" type="button" onClick={() => setOpenId(openId === s.id ? null : s.id)}>
                  {openId === s.id ? "Close" : "Transcript"}
                </button>
                <button class="adam-button adam-button--small adam-button--danger" type="button" onClick={() => void end(s)}>
                  {s.ended_at === null ? "End" : "Delete"}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Sessions</h1>
          <p class="admin-page__lead">Conversations with the assistant, with what was said and how fast it answered.</p>
        </div>
        <button class="adam-button" type="button" onClick={() => void sessions.reload()}>
          Refresh
        </button>
      </header>
      {(error || sessions.error) && <p class="adam-notice adam-notice--error">{error ?? sessions.error}</p>}
      <h2 class="admin-page__section">Live now ({live.length})</h2>
      {table(live, "No conversation is live.")}
      <h2 class="admin-page__section">Past</h2>
      {table(past, "No past conversations.")}
      {openId && <TranscriptPanel key={openId} scope={scope} sessionId={openId} onClose={() => setOpenId(null)} />}
    </section>
  );
}

function TranscriptPanel({ scope, sessionId, onClose }: { scope: PageProps["scope"]; sessionId: string; onClose: () => void }) {
  const detail = useResource(
    () => scope.api.request<SessionDetail>(`/v1/sessions/${sessionId}`),
    sessionId,
    (s) => (s.ended_at === null ? LIVE_POLL_MS : null),
  );
  const session = detail.data;
  return (
    <aside class="drawer" aria-label="Transcript">
      <header class="drawer__head">
        <div>
          <h2>Transcript</h2>
          {session && (
            <p class="admin-page__lead">
              {formatDateTime(session.started_at)} · {formatDuration(session.started_at, session.ended_at)} · {session.ended_at ? session.end_reason ?? "ended" : "live"}
            </p>
          )}
        </div>
        <button class="adam-button adam-button--small" type="button" onClick={onClose}>
          Close
        </button>
      </header>
      {detail.error && <p class="adam-notice adam-notice--error">{detail.error}</p>}
      {session?.turns.length === 0 && <p class="admin-empty">No turns yet.</p>}
      <ol class="turns">
        {session?.turns.map((turn) => (
          <li key={turn.seq} class="turn">
            <p class="turn__user">
              <span class="turn__who">Customer</span> {turn.user_text}
            </p>
            <p class="turn__assistant">
              <span class="turn__who">Assistant</span> {turn.assistant_text || <em>(nothing was heard)</em>}
            </p>
            <p class="turn__meta">
              <StatusBadge status={turn.interrupted ? "interrupted" : turn.status} />
              <span>voice-to-voice {formatMs(turn.metrics.voice_to_voice_ms ?? turn.latency_ms)}</span>
              <span>speech-to-text {formatMs(turn.metrics.stt_ms)}</span>
              <span>first token {formatMs(turn.metrics.answer_first_token_ms)}</span>
              {turn.metrics.cache_hit && <span>cached answer</span>}
            </p>
            {turn.citations.length > 0 && (
              <ul class="turn__citations">
                {turn.citations.map((c, i) => (
                  <li key={i}>
                    <strong>
                      {c.title}
                      {c.page !== null ? `, p. ${c.page}` : ""}
                    </strong>{" "}
                    <span class="turn__score">score {c.score.toFixed(2)}</span>
                    <blockquote>{c.text}</blockquote>
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ol>
    </aside>
  );
}
