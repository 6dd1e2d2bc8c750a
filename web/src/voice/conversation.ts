//! One customer's conversation with Adam, whatever the transport: opens the microphone,
//! creates sessions, picks WebRTC or the WebSocket (falling back when WebRTC cannot connect),
//! reconnects with backoff, and turns Adam's events into a transcript, an avatar state and
//! mouth shapes. A dealership's video avatar (`avatar.stream`) joins its LiveKit room and
//! speaks the responses created after it, instead of Adam's own audio; if it cannot, the
//! built-in avatar does. The UI only renders `state` and reads `currentViseme()`.

import type { Api } from "../api/http";
import { ApiError } from "../api/http";
import type { Citation, ResponseMetrics } from "../api/types";
import { backoffDelayMs } from "./backoff";
import { typedQuestion, type ResponseStatus, type ServerEvent, type Viseme } from "./events";
import { closeMicrophone, MicrophoneError, openMicrophone } from "./microphone";
import { createSession, type Credentials, type SessionTicket } from "./session";
import { Store } from "./store";
import { TransportFailed, type Transport, type TransportClosed, type TransportHandlers, type TransportKind } from "./transport";
import type { VideoAvatar, VideoAvatarModule, VideoAvatarStats } from "./video-avatar";
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
  /** The video avatar's picture, shown instead of the built-in avatar while it is there. */
  avatarVideo: MediaStream | null;
  /** The dealership's notice that the conversation is recorded (from `POST /v1/sessions`). */
  recordingNotice: string | null;
}

export interface ConversationOptions {
  api: Api;
  credentials: Credentials;
  transport: TransportMode;
  /** URL of `capture-worklet.js` (a same-origin file, or a Blob URL in the widget). */
  captureWorkletUrl: string;
  /** Loads `video-avatar.ts` (with LiveKit), the first time a video avatar comes. */
  loadVideoAvatar: () => Promise<VideoAvatarModule>;
}

/** Close reasons of a session that ended on purpose: no reconnect. */
const FINAL_CLOSES: Record<string, string> = {
  "idle timeout": "The conversation ended after a minute without sound.",
  "ended by admin": "The conversation was ended by the dealership.",
  "erased on request": "The conversation was ended by the dealership.",
  "session ended": "The conversation has ended.",
  "account disabled": "The conversation ended: this account was disabled.",
  "account deleted": "The conversation ended: this account was deleted.",
  "password changed": "The conversation ended: the password of this account was changed. Sign in again.",
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
    avatarVideo: null,
    recordingNotice: null,
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
  /** The video avatar's room, once joined; until it fails or the session ends. */
  private videoAvatar: VideoAvatar | null = null;
  /** Bumped when a video avatar is started or dropped: a join that ends later is left. */
  private avatarGeneration = 0;
  /** A video avatar speaks the responses created from now on (`avatar.stream` came). */
  private avatarSpeaks = false;
  /** The responses the video avatar speaks: Adam's audio of them is not played. */
  private readonly avatarResponses = new Set<string>();

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
  async diagnostics(): Promise<Diagnostics> {
    const transport = this.transport;
    return {
      transport: transport?.kind ?? null,
      audioFramesReceived: transport instanceof WebSocketTransport ? transport.stats.framesReceived : 0,
      audioFramesPlayed: transport instanceof WebSocketTransport ? transport.stats.framesPlayed : 0,
      inboundAudio: transport instanceof WebRtcTransport ? await transport.inboundAudio() : null,
      playing: transport !== null && transport.playbackEndMs() > transport.clockMs(),
      audible: transport instanceof WebRtcTransport ? transport.audible : null,
      withheldResponses: [...this.avatarResponses],
      videoAvatar: this.videoAvatar ? await this.videoAvatar.stats() : null,
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
    this.state.update({ avatarSettings: ticket.avatar ?? {}, recordingNotice: ticket.recording_notice?.trim() || null });
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
      plays: (responseId) => !this.avatarResponses.has(responseId),
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
        if (this.avatarSpeaks) this.avatarResponses.add(event.response.id);
        this.addLine({ role: "assistant", id: event.response.id, text: "", status: "streaming", citations: [] });
        this.state.update({ notice: null });
        if (this.state.get().avatar !== "speaking") this.setAvatar("thinking");
        break;
      case "response.output_text.delta":
        this.updateAssistant(event.response_id, (line) => ({ ...line, text: line.text + event.delta }));
        break;
      case "response.output_audio.started":
        // Adam's audio of it is not played, so no clock tells when it speaks: the video
        // avatar speaks it now, give or take its own latency.
        if (this.avatarResponses.has(event.response_id)) this.setAvatar("speaking");
        break;
      case "avatar.viseme":
        // Kept even for the video avatar's responses: they are placed on the clock only if
        // Adam's audio of them is played after all.
        this.visemes.add(event.response_id, event.viseme, event.audio_offset_ms, event.duration_ms);
        break;
      case "avatar.stream":
        this.startVideoAvatar(event.livekit_url, event.access_token);
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
        if (event.error.code === "avatar_failed") {
          // Nothing the customer can act on: the built-in avatar takes over.
          this.videoAvatarFailed(`avatar_failed: ${event.error.message}`);
          break;
        }
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
    this.avatarResponses.delete(response.id);
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

  /** Joins the video avatar's room (a new `avatar.stream` replaces the previous room). */
  private startVideoAvatar(url: string, token: string): void {
    this.leaveVideoAvatar();
    this.avatarSpeaks = true;
    const generation = ++this.avatarGeneration;
    const current = () => generation === this.avatarGeneration;
    this.options
      .loadVideoAvatar()
      .then(({ VideoAvatar }) =>
        VideoAvatar.join(url, token, {
          onVideo: (stream) => {
            if (current()) this.state.update({ avatarVideo: stream });
          },
          onLost: (why) => {
            if (current()) this.videoAvatarFailed(why);
          },
        }),
      )
      .then(
        (avatar) => {
          if (current()) this.videoAvatar = avatar;
          else avatar.leave(); // the session ended, or another avatar came, while joining
        },
        (error: unknown) => {
          if (current()) this.videoAvatarFailed(`its room could not be joined: ${error instanceof Error ? error.message : String(error)}`);
        },
      );
  }

  /** The video avatar is gone (or never came): the built-in avatar speaks Adam's audio again
   *  at once, including the rest of a response under way. */
  private videoAvatarFailed(why: string): void {
    if (!this.avatarSpeaks && !this.videoAvatar) return;
    console.warn(`Adam: the video avatar is not available (${why}); the built-in avatar and Adam's own voice take over`);
    this.leaveVideoAvatar();
    const withheld = this.avatarResponses.size > 0;
    this.avatarResponses.clear();
    if (withheld) this.transport?.resumeAudio();
  }

  private leaveVideoAvatar(): void {
    this.avatarGeneration++;
    this.avatarSpeaks = false;
    this.videoAvatar?.leave();
    this.videoAvatar = null;
    if (this.state.get().avatarVideo) this.state.update({ avatarVideo: null });
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
    // The session's avatar room closes with it (a reconnect is a new session).
    this.leaveVideoAvatar();
    this.avatarResponses.clear();
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

/** What `diagnostics()` reports. */
export interface Diagnostics {
  transport: TransportKind | null;
  /** WebSocket: Adam's audio frames received, and those played. */
  audioFramesReceived: number;
  audioFramesPlayed: number;
  /** WebRTC: Adam's audio track. */
  inboundAudio: InboundAudioStats | null;
  /** Adam's audio is playing now. */
  playing: boolean;
  /** WebRTC: the element playing Adam's audio is not muted (barge-in, video avatar). */
  audible: boolean | null;
  /** Responses the video avatar speaks (Adam's audio of them withheld). */
  withheldResponses: string[];
  videoAvatar: VideoAvatarStats | null;
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
