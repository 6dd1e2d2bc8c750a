//! The WebSocket transport: PCM16 frames both ways, JSON events as text frames. The client
//! captures and plays the audio itself, so it knows when every frame plays.

import { parseServerEvent, type ClientEvent } from "./events";
import { PcmCapture } from "./pcm-capture";
import { PcmPlayer } from "./pcm-player";
import type { SessionTicket } from "./session";
import { TransportFailed, withTimeout, type Transport, type TransportHandlers } from "./transport";

const CONNECT_TIMEOUT_MS = 8000;

/** Counters the browser tests read. */
export interface WebSocketStats {
  framesReceived: number;
  /** Frames scheduled for playback (not those of a response a video avatar speaks). */
  framesPlayed: number;
  framesSent: number;
}

export class WebSocketTransport implements Transport {
  readonly kind = "websocket";
  readonly stats: WebSocketStats = { framesReceived: 0, framesPlayed: 0, framesSent: 0 };
  private readonly player: PcmPlayer;
  private capture: PcmCapture | null = null;
  /** Between `response.output_audio.cleared` and the next `.started`, frames are stale. */
  private dropping = true;
  /** The response whose frames arrive now; `withheldSamples` counts those not played while a
   *  video avatar speaks it (`null`: they are played). */
  private current: { id: string; sampleRate: number; withheldSamples: number | null } | null = null;
  private closed = false;
  private isOpen = false;
  private readonly opened: Promise<void>;
  /** Resolves with the session's `input_sample_rate` from `session.created`. */
  private readonly created: Promise<number>;
  private onCreated: (inputSampleRate: number) => void = () => undefined;
  private refused: (error: Error) => void = () => undefined;

  private constructor(
    private readonly socket: WebSocket,
    private readonly context: AudioContext,
    private readonly handlers: TransportHandlers,
  ) {
    this.player = new PcmPlayer(context, handlers.onAudioClock);
    // Handlers go on at once: `session.created` may arrive before `connect` returns.
    this.opened = new Promise((resolve, reject) => {
      socket.onopen = () => {
        this.isOpen = true;
        resolve();
      };
      this.refused = reject;
    });
    this.opened.catch(() => undefined); // a refusal after a timeout is nobody's concern
    this.created = new Promise((resolve) => {
      this.onCreated = resolve;
    });
    socket.onmessage = (message) => this.receive(message.data as ArrayBuffer | string);
    socket.onclose = (event) => this.finish(event.code === 1006 ? null : event.code, event.reason);
    socket.onerror = () => undefined; // always followed by onclose
  }

  /** Opens the session's WebSocket and starts streaming the microphone. */
  static async connect(
    api: { url(path: string): string },
    ticket: SessionTicket,
    microphone: MediaStream,
    workletUrl: string,
    handlers: TransportHandlers,
  ): Promise<WebSocketTransport> {
    const url = new URL(api.url(ticket.ws_url));
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    const transport = new WebSocketTransport(socket, new AudioContext({ latencyHint: "interactive" }), handlers);
    try {
      await withTimeout(transport.opened, CONNECT_TIMEOUT_MS, "websocket", "opening the WebSocket");
      await transport.context.resume();
      // The microphone is resampled by the browser to the rate Adam expects, so no
      // `session.update` has to race the first audio frames.
      const inputRate = await withTimeout(transport.created, CONNECT_TIMEOUT_MS, "websocket", "waiting for session.created");
      transport.capture = await PcmCapture.start(microphone, inputRate, workletUrl, (pcm) => transport.sendAudio(pcm));
      return transport;
    } catch (error) {
      transport.close();
      throw error;
    }
  }

  send(event: ClientEvent): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(event));
  }

  clockMs(): number {
    return this.context.currentTime * 1000;
  }

  playbackEndMs(): number {
    return this.player.endMs();
  }

  clearAudio(): void {
    this.dropping = true;
    this.current = null;
    this.player.clear();
  }

  resumeAudio(): void {
    const current = this.current;
    if (!current || current.withheldSamples === null || this.dropping) return;
    // The frames from now on play where they belong on the response's timeline.
    this.player.begin(current.id, current.sampleRate, (current.withheldSamples / current.sampleRate) * 1000);
    current.withheldSamples = null;
  }

  close(): void {
    this.teardown();
    this.socket.close(1000, "client ended");
  }

  private sendAudio(pcm: ArrayBuffer): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(pcm);
    this.stats.framesSent++;
  }

  private receive(data: ArrayBuffer | string): void {
    if (typeof data !== "string") {
      this.stats.framesReceived++;
      if (this.dropping || !this.current) return;
      if (this.current.withheldSamples !== null) {
        this.current.withheldSamples += data.byteLength >> 1;
        return;
      }
      this.player.enqueue(data);
      this.stats.framesPlayed++;
      return;
    }
    const event = parseServerEvent(data);
    if (!event) return;
    if (event.type === "session.created") {
      this.onCreated(event.session.input_sample_rate);
    } else if (event.type === "response.output_audio.started") {
      this.dropping = false;
      const plays = this.handlers.plays(event.response_id);
      this.current = { id: event.response_id, sampleRate: event.sample_rate, withheldSamples: plays ? null : 0 };
      // A withheld response's frames are counted, not scheduled (the previous response's last
      // frames still play out).
      if (plays) this.player.begin(event.response_id, event.sample_rate);
    } else if (event.type === "response.output_audio.cleared") {
      this.clearAudio();
    }
    this.handlers.onEvent(event);
  }

  private finish(code: number | null, reason: string): void {
    if (this.closed) return;
    this.teardown();
    if (this.isOpen) {
      this.handlers.onClosed({ code, reason });
      return;
    }
    // Closed before it opened: the upgrade was refused (401 used ticket, 403 origin, 503
    // busy). Browsers do not expose the status, only that the socket closed.
    this.refused(new TransportFailed("websocket", "the WebSocket was refused or could not connect"));
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.onmessage = null;
    this.socket.onclose = null;
    this.capture?.stop();
    this.player.clear();
    void this.context.close();
  }
}
