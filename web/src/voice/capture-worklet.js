// Audio worklet: cuts the microphone into PCM16 frames of `frameSamples` samples and posts
// each one's ArrayBuffer to the main thread. Plain JavaScript: it is loaded as is, by URL
// (pages, under Adam's CSP) or from a Blob (the widget, on the host's page).
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = new Int16Array(options.processorOptions.frameSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.frame.length) {
        const out = this.frame.slice();
        this.port.postMessage(out.buffer, [out.buffer]);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("adam-pcm-capture", PcmCapture);
