//! The WebRTC transport: the microphone and the answer's voice as Opus tracks, the JSON events
//! on the data channel `events`. The browser plays the remote track, so the avatar times its
//! mouth from `response.output_audio.started` plus the receiver's playout delay.

import { errorFromResponse } from "../api/http";
import { parseServerEvent, type ClientEvent, type ServerEvent } from "./events";
import type { SessionTicket } from "./session";
import { TransportFailed, withTimeout, type Transport, type TransportHandlers } from "./transport";

/** Non-trickle ICE: the offer carries the candidates gathered within this time. */
const ICE_GATHERING_MS = 2000;
/** Adam's answer to the offer (it gathers its own candidates first). */
const ANSWER_TIMEOUT_MS = 8000;
/** From the answer to a connected peer and an open data channel. */
const CONNECT_TIMEOUT_MS = 5000;
/** Playout delay assumed until the receiver's statistics tell (jitter buffer + decoding). */
const DEFAULT_PLAYOUT_DELAY_MS = 60;
const STATS_INTERVAL_MS = 1000;

/** Inbound audio statistics the browser tests read. */
export interface InboundAudioStats {
  packetsReceived: number;
  bytesReceived: number;
  jitterBufferDelayMs: number | null;
}

export class WebRtcTransport implements Transport {
  readonly kind = "webrtc";
  private readonly channel: RTCDataChannel;
  private readonly audio: HTMLAudioElement;
  private playoutDelayMs = DEFAULT_PLAYOUT_DELAY_MS;
  private jitterTotals = { delay: 0, emitted: 0 };
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  /** When the current response's audio ends, on `clockMs` (moved forward by `response.done`). */
  private audioEndMs = 0;
  /** The response whose audio arrives now: where its offset 0 plays, and whether it is
   *  withheld (muted: a video avatar speaks it). */
  private current: { id: string; startMs: number; withheld: boolean } | null = null;
  private connected = false;
  private closed = false;
  private serverClosed: { code: number; reason: string } | null = null;

  private constructor(
    private readonly peer: RTCPeerConnection,
    private readonly handlers: TransportHandlers,
  ) {
    this.channel = peer.createDataChannel("events", { ordered: true });
    this.channel.onmessage = (message) => {
      if (typeof message.data === "string") this.receive(message.data);
    };
    this.channel.onclose = () => this.finish();
    this.audio = new Audio();
    this.audio.autoplay = true;
    peer.ontrack = (event) => {
      this.audio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      void this.audio.play().catch(() => undefined); // autoplay refusals are retried by the user's next click
    };
    peer.onconnectionstatechange = () => {
      if (peer.connectionState === "failed" || peer.connectionState === "closed") this.finish();
    };
  }

  /** Offers the microphone and the data channel to `ticket.webrtc_url`, and waits until both
   *  are up. Throws `ApiError` when Adam refuses (busy, forbidden, …) and `TransportFailed`
   *  when the connection cannot be made. */
  static async connect(
    api: { url(path: string): string },
    ticket: SessionTicket,
    microphone: MediaStream,
    handlers: TransportHandlers,
  ): Promise<WebRtcTransport> {
    if (!ticket.webrtc_url) throw new TransportFailed("webrtc", "this server does not offer WebRTC");
    const track = microphone.getAudioTracks()[0];
    if (!track) throw new TransportFailed("webrtc", "no microphone track");
    const transport = new WebRtcTransport(new RTCPeerConnection({ iceServers: ticket.ice_servers ?? [] }), handlers);
    try {
      await transport.negotiate(api.url(ticket.webrtc_url), track);
      await withTimeout(transport.established(), CONNECT_TIMEOUT_MS, "webrtc", "connecting over WebRTC");
      transport.statsTimer = setInterval(() => void transport.sampleStats(), STATS_INTERVAL_MS);
      return transport;
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  send(event: ClientEvent): void {
    if (this.channel.readyState === "open") this.channel.send(JSON.stringify(event));
  }

  clockMs(): number {
    return performance.now();
  }

  playbackEndMs(): number {
    return Math.max(this.audioEndMs, performance.now());
  }

  /** Adam has stopped sending; mute what the jitter buffer still holds until the next answer. */
  clearAudio(): void {
    this.audio.volume = 0;
    this.audioEndMs = 0;
    this.current = null;
  }

  resumeAudio(): void {
    const current = this.current;
    if (!current?.withheld) return;
    current.withheld = false;
    this.audio.volume = 1;
    if (this.audioEndMs === 0) this.audioEndMs = Number.POSITIVE_INFINITY;
    this.handlers.onAudioClock(current.id, current.startMs);
  }

  /** Whether Adam's audio is audible now (not muted by a barge-in or for a video avatar). */
  get audible(): boolean {
    return this.audio.volume > 0 && !this.audio.paused;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.statsTimer);
    this.channel.onclose = null;
    this.peer.onconnectionstatechange = null;
    this.channel.close();
    this.peer.close();
    this.audio.srcObject = null;
  }

  /** The receiver's audio statistics (`inbound-rtp`, kind audio). */
  async inboundAudio(): Promise<InboundAudioStats> {
    const stats: InboundAudioStats = { packetsReceived: 0, bytesReceived: 0, jitterBufferDelayMs: null };
    (await this.peer.getStats()).forEach((report: RTCInboundRtpStreamStats) => {
      if (report.type !== "inbound-rtp" || report.kind !== "audio") return;
      stats.packetsReceived += report.packetsReceived ?? 0;
      stats.bytesReceived += report.bytesReceived ?? 0;
      const emitted = report.jitterBufferEmittedCount ?? 0;
      if (emitted > 0) stats.jitterBufferDelayMs = ((report.jitterBufferDelay ?? 0) / emitted) * 1000;
    });
    return stats;
  }

  private async negotiate(url: string, track: MediaStreamTrack): Promise<void> {
    this.peer.addTransceiver(track, { direction: "sendrecv" });
    await this.peer.setLocalDescription(await this.peer.createOffer());
    await iceGathered(this.peer, ICE_GATHERING_MS);
    const offer = this.peer.localDescription;
    if (!offer) throw new TransportFailed("webrtc", "no local description");
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ type: "offer", sdp: offer.sdp }),
        credentials: "omit",
        signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
      });
    } catch {
      throw new TransportFailed("webrtc", "no answer to the WebRTC offer");
    }
    if (!res.ok) {
      const error = await errorFromResponse(res);
      // Capacity and shutdown are the server's answer whatever the transport; anything else
      // (no WebRTC route, SDP refused) is a reason to try the WebSocket.
      if (error.code === "busy" || error.code === "draining" || error.code === "forbidden") throw error;
      throw new TransportFailed("webrtc", `the WebRTC offer was refused: ${error.message}`);
    }
    const answer = (await res.json()) as RTCSessionDescriptionInit;
    await this.peer.setRemoteDescription(answer);
  }

  private established(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.peer.connectionState === "connected" && this.channel.readyState === "open") {
          this.connected = true;
          resolve();
        } else if (this.peer.connectionState === "failed" || this.peer.connectionState === "closed") {
          reject(new TransportFailed("webrtc", "the WebRTC connection failed"));
        }
      };
      this.channel.addEventListener("open", check);
      this.peer.addEventListener("connectionstatechange", check);
      check();
    });
  }

  private receive(text: string): void {
    const event = parseServerEvent(text);
    if (!event) return;
    if (event.type === "session.closed") {
      this.serverClosed = { code: event.code, reason: event.reason };
      return;
    }
    this.trackAudio(event);
    this.handlers.onEvent(event);
  }

  /** Places the response's audio on the clock: it plays one playout delay after Adam sends it. */
  private trackAudio(event: ServerEvent): void {
    const now = performance.now();
    if (event.type === "response.output_audio.started") {
      const withheld = !this.handlers.plays(event.response_id);
      this.current = { id: event.response_id, startMs: now + this.playoutDelayMs, withheld };
      if (withheld) {
        // The track keeps flowing (Adam sends it anyway); a video avatar speaks this one.
        this.audio.volume = 0;
        this.audioEndMs = 0;
        return;
      }
      this.audio.volume = 1;
      this.audioEndMs = Number.POSITIVE_INFINITY;
      this.handlers.onAudioClock(event.response_id, this.current.startMs);
    } else if (event.type === "response.done" && this.audioEndMs > 0) {
      // `response.done` is sent when the last frame is due to have played at the client.
      this.audioEndMs = now + this.playoutDelayMs;
    }
  }

  /** Refreshes the playout delay from the jitter buffer's recent average. */
  private async sampleStats(): Promise<void> {
    let delay = 0;
    let emitted = 0;
    (await this.peer.getStats()).forEach((report: RTCInboundRtpStreamStats) => {
      if (report.type !== "inbound-rtp" || report.kind !== "audio") return;
      delay += report.jitterBufferDelay ?? 0;
      emitted += report.jitterBufferEmittedCount ?? 0;
    });
    const emittedSince = emitted - this.jitterTotals.emitted;
    if (emittedSince > 0) {
      this.playoutDelayMs = ((delay - this.jitterTotals.delay) / emittedSince) * 1000;
    }
    this.jitterTotals = { delay, emitted };
  }

  private finish(): void {
    if (this.closed) return;
    const wasConnected = this.connected;
    this.close();
    if (!wasConnected) return; // `connect` reports it
    this.handlers.onClosed(this.serverClosed ?? { code: null, reason: "connection lost" });
  }
}

/** Resolves when ICE gathering completes, or after `ms` with what was gathered. */
function iceGathered(peer: RTCPeerConnection, ms: number): Promise<void> {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      peer.removeEventListener("icegatheringstatechange", onChange);
      resolve();
    };
    const onChange = () => {
      if (peer.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ms);
    peer.addEventListener("icegatheringstatechange", onChange);
  });
}
