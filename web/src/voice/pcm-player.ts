//! Plays Adam's PCM16 frames (WebSocket transport) on an AudioContext, each frame scheduled
//! right after the previous one, so the client knows when every sample plays.

/** How far ahead of "now" the first frame of a burst is scheduled: covers network jitter. */
const START_LEAD_S = 0.06;

/** Scheduled playback of one response at a time. */
export class PcmPlayer {
  private sources = new Set<AudioBufferSourceNode>();
  private nextTime = 0;
  private sampleRate = 24000;
  private responseId: string | null = null;
  private playedMs = 0;

  constructor(
    private readonly context: AudioContext,
    /** Called when a response's offset 0 moves to `startMs` (context clock, ms). */
    private readonly onClock: (responseId: string, startMs: number) => void,
  ) {}

  /** Frames from now on belong to `responseId`, at `sampleRate`; the first of them is
   *  `offsetMs` into the response's audio (not 0 when earlier frames were not played). */
  begin(responseId: string, sampleRate: number, offsetMs = 0): void {
    this.responseId = responseId;
    this.sampleRate = sampleRate;
    this.playedMs = offsetMs;
  }

  /** Queues one PCM16 LE frame of the current response. */
  enqueue(frame: ArrayBuffer): void {
    if (this.responseId === null) return;
    const view = new DataView(frame);
    const samples = view.byteLength >> 1;
    if (samples === 0) return;
    const buffer = this.context.createBuffer(1, samples, this.sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples; i++) channel[i] = view.getInt16(i * 2, true) / 0x8000;

    const now = this.context.currentTime;
    const stalled = this.nextTime < now + 0.005;
    const at = stalled ? now + START_LEAD_S : this.nextTime;
    // The first frame, or a frame after an underrun, (re)anchors the response's timeline.
    if (stalled) this.onClock(this.responseId, at * 1000 - this.playedMs);

    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.onended = () => this.sources.delete(source);
    source.start(at);
    this.sources.add(source);
    this.nextTime = at + buffer.duration;
    this.playedMs += buffer.duration * 1000;
  }

  /** Stops every scheduled frame now (barge-in) and drops frames until the next `begin`. */
  clear(): void {
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
      source.disconnect();
    }
    this.sources.clear();
    this.nextTime = 0;
    this.responseId = null;
  }

  /** Whether a frame is playing or scheduled. */
  get playing(): boolean {
    return this.sources.size > 0;
  }

  /** When the last scheduled frame ends (ms, context clock). */
  endMs(): number {
    return Math.max(this.nextTime, this.context.currentTime) * 1000;
  }
}
