//! What the conversation needs from a transport, whichever carries it (WebRTC or WebSocket).

import type { ClientEvent, ServerEvent } from "./events";

export type TransportKind = "webrtc" | "websocket";

/** Why a transport stopped. `code` follows the WebSocket close codes (1000 normal, 1001
 *  shutting down, 1008 policy, 1011 internal); `null` means the connection was lost. */
export interface TransportClosed {
  code: number | null;
  reason: string;
}

/** Callbacks a transport drives. */
export interface TransportHandlers {
  /** Every JSON event from Adam, in order. */
  onEvent(event: ServerEvent): void;
  /** The audio of `responseId` starts (or, after a stall, resumes) playing such that its
   *  offset 0 is at `startMs` on the transport's clock (`clockMs`). */
  onAudioClock(responseId: string, startMs: number): void;
  /** The connection ended; called once. */
  onClosed(closed: TransportClosed): void;
  /** Whether to play Adam's audio of `responseId`: not when a video avatar speaks it
   *  (asked at its `response.output_audio.started`). */
  plays(responseId: string): boolean;
}

/** A live connection carrying one session. */
export interface Transport {
  readonly kind: TransportKind;
  /** Sends an event to Adam. */
  send(event: ClientEvent): void;
  /** Now, on the clock the audio is timed against (ms). */
  clockMs(): number;
  /** When the audio already received will have finished playing, on `clockMs`. */
  playbackEndMs(): number;
  /** Silences whatever audio of the current response is still buffered. */
  clearAudio(): void;
  /** Plays the rest of the current response's audio after all, when it was withheld
   *  (`plays` said no: the video avatar that was to speak it is gone). */
  resumeAudio(): void;
  /** Closes the connection without calling `onClosed`. */
  close(): void;
}

/** A transport that did not connect: the caller may try the other one. */
export class TransportFailed extends Error {
  constructor(
    readonly kind: TransportKind,
    message: string,
  ) {
    super(message);
    this.name = "TransportFailed";
  }
}

/** Rejects after `ms` with `TransportFailed` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, kind: TransportKind, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportFailed(kind, `${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
