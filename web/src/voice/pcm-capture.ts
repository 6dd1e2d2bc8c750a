//! Microphone → 20 ms PCM16 frames, for the WebSocket transport.

const FRAME_MS = 20;

/** Streams a microphone through the capture worklet into `onFrame`, on an AudioContext of its
 *  own: a large render buffer ("playback" latency) rides out a busy CPU without losing input
 *  (an "interactive" context drops microphone audio when its render thread runs late), and
 *  capture latency of a few tens of ms does not matter to turn detection. */
export class PcmCapture {
  private constructor(
    private readonly context: AudioContext,
    private readonly source: MediaStreamAudioSourceNode,
    private readonly node: AudioWorkletNode,
  ) {}

  /** Loads the worklet module (`workletUrl`) and starts capturing at `sampleRate`. */
  static async start(stream: MediaStream, sampleRate: number, workletUrl: string, onFrame: (pcm: ArrayBuffer) => void): Promise<PcmCapture> {
    const context = new AudioContext({ sampleRate, latencyHint: "playback" });
    try {
      await context.audioWorklet.addModule(workletUrl);
      await context.resume();
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "adam-pcm-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        channelCount: 1,
        channelCountMode: "explicit",
        processorOptions: { frameSamples: Math.round((sampleRate * FRAME_MS) / 1000) },
      });
      node.port.onmessage = (message: MessageEvent<ArrayBuffer>) => onFrame(message.data);
      source.connect(node);
      return new PcmCapture(context, source, node);
    } catch (error) {
      await context.close();
      throw error;
    }
  }

  stop(): void {
    this.node.port.onmessage = null;
    this.source.disconnect();
    void this.context.close();
  }
}
