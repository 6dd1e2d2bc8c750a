//! Microphone → 20 ms PCM16 frames, for the WebSocket transport.

/** Frames of 20 ms at the context's sample rate (sent to Adam as `input_sample_rate`). */
const FRAME_MS = 20;

/** Streams `stream`'s first audio track through the capture worklet into `onFrame`. */
export class PcmCapture {
  private readonly node: AudioWorkletNode;
  private readonly source: MediaStreamAudioSourceNode;

  private constructor(context: AudioContext, stream: MediaStream, onFrame: (pcm: ArrayBuffer) => void) {
    this.source = context.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(context, "adam-pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { frameSamples: Math.round((context.sampleRate * FRAME_MS) / 1000) },
    });
    this.node.port.onmessage = (message: MessageEvent<ArrayBuffer>) => onFrame(message.data);
    this.source.connect(this.node);
  }

  /** Loads the worklet module (`workletUrl`) and starts capturing. */
  static async start(
    context: AudioContext,
    workletUrl: string,
    stream: MediaStream,
    onFrame: (pcm: ArrayBuffer) => void,
  ): Promise<PcmCapture> {
    await context.audioWorklet.addModule(workletUrl);
    return new PcmCapture(context, stream, onFrame);
  }

  stop(): void {
    this.source.disconnect();
    this.node.port.onmessage = null;
  }
}
