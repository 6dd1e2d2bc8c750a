//! `POST /v1/sessions`: a one-time ticket for one conversation, as a signed-in user or as an
//! anonymous visitor holding a dealership's embed key.

import type { Api } from "../api/http";

/** How the conversation is authorised. */
export type Credentials =
  | { kind: "user"; dealershipId?: string }
  | { kind: "embed"; embedKey: string };

/** The answer of `POST /v1/sessions`. `webrtc_url`, `ice_servers` and `avatar` come from
 *  servers with WebRTC, `recording_notice` from servers with retention settings; older ones
 *  send only the WebSocket fields. */
export interface SessionTicket {
  session_id: string;
  ws_url: string;
  ticket: string;
  expires_in: number;
  webrtc_url?: string;
  ice_servers?: RTCIceServer[];
  avatar?: Record<string, unknown>;
  /** The dealership's notice that the conversation is recorded, shown while it runs. */
  recording_notice?: string;
}

/** Creates a session; throws `ApiError` (`busy`, `forbidden`, `unauthorized`, …). */
export function createSession(api: Api, credentials: Credentials): Promise<SessionTicket> {
  if (credentials.kind === "embed") {
    return api.request<SessionTicket>("/v1/sessions", {
      method: "POST",
      body: {},
      headers: { "X-Embed-Key": credentials.embedKey },
      auth: false,
    });
  }
  const body = credentials.dealershipId ? { dealership_id: credentials.dealershipId } : {};
  return api.request<SessionTicket>("/v1/sessions", { method: "POST", body });
}
