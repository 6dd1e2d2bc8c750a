//! The realtime events of docs/protocol.md: the same JSON objects travel as WebSocket text
//! frames and over the WebRTC data channel `events`.

import type { Citation, ResponseMetrics } from "../api/types";

/** Oculus-style mouth shapes sent in `avatar.viseme`. */
export const VISEMES = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"] as const;
export type Viseme = (typeof VISEMES)[number];

export type ResponseStatus = "completed" | "cancelled" | "failed";

export interface SessionParams {
  id: string;
  input_sample_rate: number;
  output_sample_rate: number;
  voice: string;
}

/** Events Adam sends; unknown types are ignored by the client. */
export type ServerEvent =
  | { type: "session.created" | "session.updated"; session: SessionParams }
  | { type: "input_audio_buffer.speech_started"; item_id: string; audio_start_ms: number }
  | { type: "input_audio_buffer.speech_stopped"; item_id: string; audio_end_ms: number }
  | { type: "conversation.item.input_audio_transcription.delta"; item_id: string; delta: string }
  | { type: "conversation.item.input_audio_transcription.completed"; item_id: string; transcript: string }
  | { type: "response.created"; response: { id: string; status: "in_progress" } }
  | { type: "response.output_text.delta"; response_id: string; delta: string }
  | { type: "response.output_audio.started"; response_id: string; sample_rate: number }
  | { type: "avatar.viseme"; response_id: string; viseme: Viseme; audio_offset_ms: number; duration_ms: number }
  | { type: "avatar.stream"; provider: string; livekit_url: string; access_token: string }
  | { type: "response.output_audio.cleared"; response_id: string }
  | {
      type: "response.done";
      response: {
        id: string;
        status: ResponseStatus;
        output_text: string;
        citations: Citation[];
        metrics: ResponseMetrics;
      };
    }
  | { type: "session.closing"; reason: string }
  | { type: "session.closed"; code: number; reason: string }
  | { type: "error"; error: { code: string; message: string } };

/** Events the client sends. */
export type ClientEvent =
  | {
      type: "conversation.item.create";
      item: { type: "message"; role: "user"; content: { type: "input_text"; text: string }[] };
    }
  | { type: "response.create" }
  | { type: "response.cancel" };

/** Parses one text message; `null` for anything that is not an object with a string `type`. */
export function parseServerEvent(text: string): ServerEvent | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string") {
      return value as ServerEvent;
    }
  } catch {
    // not JSON: ignored like an unknown event
  }
  return null;
}

/** The two events of a typed question. */
export function typedQuestion(text: string): ClientEvent[] {
  return [
    { type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } },
    { type: "response.create" },
  ];
}
