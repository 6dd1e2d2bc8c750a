//! One customer's conversation with Adam, whatever the transport: opens the microphone,
//! creates sessions, picks WebRTC or the WebSocket (falling back when WebRTC cannot connect),
//! reconnects with backoff, and turns Adam's events into a transcript, an avatar state and
//! mouth shapes. The UI only renders `state` and reads `currentViseme()`.

import type { Api } from "../api/http";
import { ApiError } from "../api/http";
import type { Citation, ResponseMetrics } from "../api/types";
import { backoffDelayMs } from "./backoff";
import { typedQuestion, type ResponseStatus, type ServerEvent, type Viseme } from "./events";
import { closeMicrophone, MicrophoneError, openMicrophone } from "./microphone";
import { createSession, type Credentials, type SessionTicket } from "./session";
import { Store } from "./store";
import { TransportFailed, type Transport, type TransportClosed, type TransportHandlers, type TransportKind } from "./transport";
import { VisemeTimeline } from "./visemes";
import { WebRtcTransport, type InboundAudioStats } from "./webrtc";
import { WebSocketTransport } from "./websocket";

export type Phase = "idle" | "connecting" | "live" | "reconnecting" | "ended";
export type AvatarState = "idle" | "listening" | "thinking" | "speaking";
/** `auto`: WebRTC, and the WebSocket when WebRTC does not connect. */
export type TransportMode = "auto" | TransportKind;

export interface UserLine {
  role: "user";
  id: string;
  text: string;
  final: boolean;
}

export interface AssistantLine {
  role: "assistant";
  id: string;
  text: string;
  status: "streaming" | ResponseStatus;
  citations: Citation[];
}

export type Line = UserLine | AssistantLine;

export interface Notice {
  tone: "error" | "warning" | "info";
  text: string;
}

export interface ConversationState {
  phase: Phase;
  avatar: AvatarState;
  transport: TransportKind | null;
  muted: boolean;
  /** Adam hears the customer speaking now. */
  userSpeaking: boolean;
  lines: Line[];
  notice: Notice | null;
  /** Stage timings of the last finished response. */
  lastMetrics: ResponseMetrics | null;
  /** The dealership's avatar settings (colours, name), from `POST /v1/sessions`. */
  avatarSettings: Record<string, unknown>;
}

export interface ConversationOptions {
  api: Api;
  credentials: Credentials;
  transport: TransportMode;
  /** URL of `capture-worklet.js` (a same-origin file, or a Blob URL in the widget). */
  captureWorkletUrl: string;
}

/** Close reasons of a session that ended on purpose: no reconnect. */
const FINAL_CLOSES: Record<string, string> = {
  "idle timeout": "The conversation ended after a minute without sound.",
  "ended by admin": "The conversation was ended by the dealership.",
  "session ended": "The conversation has ended.",
};
const EVENT_LOG_SIZE = 300;

export class Conversation {
  readonly state = new Store<ConversationState>({
    phase: "idle",
    avatar: "idle",
    transport: null,
    muted: false,
    userSpeaking: false,
    lines: [],
    notice: null,
    lastMetrics: null,
    avatarSettings: {},
  });
  /** Types of the latest events received, newest last (for diagnostics and tests). */
  readonly eventLog: string[] = [];
  private readonly visemes = new VisemeTimeline();
  private microphone: MediaStream | null = null;
  private transport: Transport | null = null;
  /** Bumped by every connection attempt and by `end`: callbacks of older ones are ignored. */
  private attempt = 0;
  private failures = 0;
  private webrtcFailed = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private avatarTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: ConversationOptions) {}

  /** Opens the microphone and connects. Safe to call again after an end or a failure. */
  async start(): Promise<void> {
    const { phase } = this.state.get();
    if (phase === "connecting" || phase === "live" || phase === "reconnecting") return;
    this.failures = 0;
    // A new conversation: the assistant remembers nothing of the previous one, nor should the page.
    this.state.update({ phase: "connecting", notice: null, lines: [], lastMetrics: null });
    const attempt = this.attempt;
    try {
      const microphone = this.microphone ?? (await openMicrophone());
      if (attempt !== this.attempt) {
        closeMicrophone(microphone); // ended while the browser asked for permission
        return;
      }
      this.microphone = microphone;
    } catch (error) {
      if (attempt !== this.attempt) return;
      const text = error instanceof MicrophoneError ? error.message : "The microphone could not be started.";
      this.state.update({ phase: "idle", notice: { tone: "error", text } });
      return;
    }
    this.applyMute();
    await this.connect();
  }

  /** Ends the conversation and releases the microphone. */
  end(): void {
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.dropTransport();
    if (this.microphone) closeMicrophone(this.microphone);
    this.microphone = null;
    this.state.update({ phase: "ended", avatar: "idle", transport: null, userSpeaking: false, notice: null });
  }

  setMuted(muted: boolean): void {
    this.state.update({ muted });
    this.applyMute();
  }

  /** Sends a typed question. */
  ask(text: string): void {
    const question = text.trim();
    if (!question || !this.transport) return;
    for (const event of typedQuestion(question)) this.transport.send(event);
    this.addLine({ role: "user", id: `typed-${Date.now()}`, text: question, final: true });
    this.setAvatar("thinking");
  }

  /** The mouth shape to show now. */
  currentViseme(): Viseme {
    return this.transport ? this.visemes.at(this.transport.clockMs()) : "sil";
  }

  /** Transport-level counters, for diagnostics and the browser tests. */
  async diagnostics(): Promise<{ transport: TransportKind | null; audioFramesReceived: number; inboundAudio: InboundAudioStats | null; playing: boolean }> {
    const transport = this.transport;
    return {
      transport: transport?.kind ?? null,
      audioFramesReceived: transport instanceof WebSocketTransport ? transport.stats.framesReceived : 0,
      inboundAudio: transport instanceof WebRtcTransport ? await transport.inboundAudio() : null,
      playing: transport !== null && transport.playbackEndMs() > transport.clockMs(),
    };
  }

  private async connect(): Promise<void> {
    const attempt = ++this.attempt;
    try {
      const transport = await this.openTransport(attempt);
      if (attempt !== this.attempt) {
        transport.close(); // ended, or closed while connecting (a reconnect is under way)
        return;
      }
      this.transport = transport;
      this.failures = 0;
      this.state.update({ phase: "live", transport: transport.kind, avatar: "listening", notice: null });
    } catch (error) {
      if (attempt === this.attempt) this.connectFailed(error);
    }
  }

  /** A session and a connected transport, trying WebRTC first in `auto` mode. */
  private async openTransport(attempt: number): Promise<Transport> {
    const { api, credentials, transport: mode } = this.options;
    const tryWebRtc = mode === "webrtc" || (mode === "auto" && !this.webrtcFailed);
    let ticket: SessionTicket | null = await createSession(api, credentials);
    this.state.update({ avatarSettings: ticket.avatar ?? {} });
    const handlers = this.handlers(attempt);
    if (tryWebRtc) {
      try {
        return await WebRtcTransport.connect(api, ticket, this.requireMicrophone(), handlers);
      } catch (error) {
        if (mode === "webrtc" || !(error instanceof TransportFailed)) throw error;
        console.warn(`Adam: WebRTC unavailable (${error.message}); using the WebSocket`);
        this.webrtcFailed = true;
        // A ticket works once: a new session unless WebRTC was never attempted with it.
        ticket = ticket.webrtc_url ? null : ticket;
      }
    }
    ticket ??= await createSession(api, credentials);
    return WebSocketTransport.connect(api, ticket, this.requireMicrophone(), this.options.captureWorkletUrl, handlers);
  }

  private handlers(attempt: number): TransportHandlers {
    return {
      onEvent: (event) => {
        if (attempt === this.attempt) this.onEvent(event);
      },
      onAudioClock: (responseId, startMs) => {
        if (attempt === this.attempt) this.onAudioClock(responseId, startMs);
      },
      onClosed: (closed) => {
        if (attempt === this.attempt) this.onClosed(closed);
      },
    };
  }

  private connectFailed(error: unknown): void {
    const embedded = this.options.credentials.kind === "embed";
    if (error instanceof ApiError) {
      switch (error.code) {
        case "busy":
          return this.retry("Adam is busy: every conversation slot is taken.");
        case "draining":
          return this.retry("Adam is restarting.");
        case "network":
          return this.retry("Adam cannot be reached.");
        case "unauthorized":
          return this.stop(embedded ? "This assistant's embed key is not valid any more (it may have been rotated)." : "Your sign-in has expired. Please sign in again.");
        case "forbidden":
          return this.stop(embedded ? "This website is not allowed to use this assistant (its address is not in the dealership's allowed origins)." : "Your account cannot start conversations (it belongs to no dealership).");
        default:
          if (error.status >= 500) return this.retry("Adam had a problem starting the conversation.");
          return this.stop(`The conversation could not start: ${error.message}.`);
      }
    }
    if (error instanceof TransportFailed) {
      if (this.options.transport === "webrtc" && error.kind === "webrtc") {
        return this.retry(`WebRTC could not connect (${error.message}).`);
      }
      return this.retry(`Could not connect (${error.message}).`);
    }
    console.error("Adam: connection failed", error);
    return this.retry("Could not connect.");
  }

  private onClosed(closed: TransportClosed): void {
    this.dropTransport();
    this.finishLines();
    const final = closed.code === 1000 ? FINAL_CLOSES[closed.reason] : undefined;
    if (final) {
      if (this.microphone) closeMicrophone(this.microphone);
      this.microphone = null;
      this.state.update({ phase: "ended", avatar: "idle", transport: null, userSpeaking: false, notice: { tone: "info", text: final } });
      return;
    }
    const why = closed.code === 1001 ? "Adam is restarting." : closed.code === null ? "The connection was lost." : `Disconnected (${closed.reason || closed.code}).`;
    this.retry(why);
  }

  /** Schedules a reconnect (a new session) after a growing delay. */
  private retry(why: string): void {
    const delay = backoffDelayMs(this.failures++);
    this.state.update({
      phase: "reconnecting",
      avatar: "idle",
      transport: null,
      userSpeaking: false,
      notice: { tone: "warning", text: `${why} Reconnecting in ${Math.ceil(delay / 1000)} s…` },
    });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private stop(text: string): void {
    this.state.update({ phase: "idle", avatar: "idle", transport: null, notice: { tone: "error", text } });
  }

  private onEvent(event: ServerEvent): void {
    this.eventLog.push(event.type === "response.done" ? `response.done:${event.response.status}` : event.type);
    if (this.eventLog.length > EVENT_LOG_SIZE) this.eventLog.shift();
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        this.state.update({ userSpeaking: true });
        this.upsertUser(event.item_id, (line) => line);
        break;
      case "input_audio_buffer.speech_stopped":
        this.state.update({ userSpeaking: false });
        this.setAvatar("thinking");
        break;
      case "conversation.item.input_audio_transcription.delta":
        this.upsertUser(event.item_id, (line) => ({ ...line, text: line.text + event.delta }));
        break;
      case "conversation.item.input_audio_transcription.completed":
        if (event.transcript.trim()) {
          this.upsertUser(event.item_id, (line) => ({ ...line, text: event.transcript.trim(), final: true }));
        } else {
          this.removeLine(event.item_id); // noise: no response follows
          if (this.state.get().avatar === "thinking") this.setAvatar("listening");
        }
        break;
      case "response.created":
        this.addLine({ role: "assistant", id: event.response.id, text: "", status: "streaming", citations: [] });
        this.state.update({ notice: null });
        if (this.state.get().avatar !== "speaking") this.setAvatar("thinking");
        break;
      case "response.output_text.delta":
        this.updateAssistant(event.response_id, (line) => ({ ...line, text: line.text + event.delta }));
        break;
      case "avatar.viseme":
        this.visemes.add(event.response_id, event.viseme, event.audio_offset_ms, event.duration_ms);
        break;
      case "response.output_audio.cleared":
        this.silence();
        break;
      case "response.done":
        this.responseDone(event.response);
        break;
      case "session.closing":
        this.state.update({ notice: { tone: "info", text: "Adam is restarting; the conversation will continue in a moment." } });
        break;
      case "error":
        this.state.update({ notice: errorNotice(event.error.code, event.error.message) });
        break;
      default:
        break;
    }
  }

  private responseDone(response: Extract<ServerEvent, { type: "response.done" }>["response"]): void {
    this.updateAssistant(response.id, (line) => ({
      ...line,
      // Cancelled: what the customer actually heard; completed: the whole answer as spoken.
      text: response.output_text || (response.status === "cancelled" ? "" : line.text),
      status: response.status,
      citations: response.citations,
    }));
    this.state.update({ lastMetrics: response.metrics });
    if (response.status !== "completed") {
      this.silence();
      return;
    }
    // The last frame may still be playing: the mouth closes when it has.
    const transport = this.transport;
    const remaining = transport ? transport.playbackEndMs() - transport.clockMs() : 0;
    this.scheduleAvatar(remaining, () => {
      this.visemes.clear();
      if (this.state.get().avatar === "speaking") this.setAvatar("listening");
    });
  }

  /** Barge-in, cancellation or failure: stop the voice and the mouth now. */
  private silence(): void {
    this.transport?.clearAudio();
    this.visemes.clear();
    clearTimeout(this.avatarTimer);
    if (this.state.get().avatar === "speaking") this.setAvatar("listening");
  }

  private onAudioClock(responseId: string, startMs: number): void {
    this.visemes.place(responseId, startMs);
    const transport = this.transport;
    const wait = transport ? startMs - transport.clockMs() : 0;
    this.scheduleAvatar(wait, () => this.setAvatar("speaking"));
  }

  private scheduleAvatar(delayMs: number, change: () => void): void {
    clearTimeout(this.avatarTimer);
    if (delayMs <= 0) change();
    else this.avatarTimer = setTimeout(change, delayMs);
  }

  private setAvatar(avatar: AvatarState): void {
    if (this.state.get().phase === "live" || avatar === "idle") this.state.update({ avatar });
  }

  private addLine(line: Line): void {
    this.state.update({ lines: [...this.state.get().lines, line] });
  }

  private removeLine(id: string): void {
    this.state.update({ lines: this.state.get().lines.filter((line) => line.id !== id) });
  }

  private upsertUser(id: string, change: (line: UserLine) => UserLine): void {
    const lines = this.state.get().lines;
    if (!lines.some((line) => line.id === id)) this.addLine({ role: "user", id, text: "", final: false });
    this.state.update({
      lines: this.state.get().lines.map((line) => (line.id === id && line.role === "user" ? change(line) : line)),
    });
  }

  private updateAssistant(id: string, change: (line: AssistantLine) => AssistantLine): void {
    this.state.update({
      lines: this.state.get().lines.map((line) => (line.id === id && line.role === "assistant" ? change(line) : line)),
    });
  }

  /** A dropped connection ends whatever was in progress. */
  private finishLines(): void {
    this.state.update({
      lines: this.state
        .get()
        .lines.filter((line) => line.role === "assistant" || line.final)
        .map((line) => (line.role === "assistant" && line.status === "streaming" ? { ...line, status: "cancelled" } : line)),
    });
  }

  private dropTransport(): void {
    clearTimeout(this.avatarTimer);
    this.visemes.clear();
    this.transport?.close();
    this.transport = null;
  }

  private applyMute(): void {
    const muted = this.state.get().muted;
    // A disabled track sends silence: Adam keeps receiving audio and is never idle.
    for (const track of this.microphone?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  private requireMicrophone(): MediaStream {
    if (!this.microphone) throw new Error("the microphone is closed"); // ended meanwhile
    return this.microphone;
  }
}

function errorNotice(code: string, message: string): Notice {
  switch (code) {
    case "transcription_failed":
    case "stt_failed":
      return { tone: "warning", text: "Sorry, I did not catch that. Could you say it again?" };
    case "answer_failed":
    case "turn_failed":
    case "tts_failed":
      return { tone: "warning", text: "Something went wrong with that answer. Please ask again." };
    default:
      return { tone: "warning", text: message };
  }
}
