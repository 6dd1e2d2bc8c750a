//! The customer's microphone, with the browser's echo cancellation (the assistant's voice must
//! not be heard as the customer talking over it), noise suppression and gain control.

/** Why the microphone could not be opened, in words a customer can act on. */
export class MicrophoneError extends Error {
  constructor(
    readonly reason: "denied" | "missing" | "busy" | "unsupported",
    message: string,
  ) {
    super(message);
    this.name = "MicrophoneError";
  }
}

/** Asks for the microphone. */
export async function openMicrophone(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new MicrophoneError("unsupported", "This browser cannot use a microphone here (a secure https:// page is needed).");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    const name = error instanceof DOMException ? error.name : "";
    if (name === "NotAllowedError" || name === "SecurityError") {
      throw new MicrophoneError("denied", "Microphone access is blocked. Allow it for this site in the browser's address bar, then try again.");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      throw new MicrophoneError("missing", "No microphone was found. Connect one, then try again.");
    }
    throw new MicrophoneError("busy", "The microphone could not be started; another application may be using it.");
  }
}

/** Releases the microphone (the browser's recording indicator goes off). */
export function closeMicrophone(stream: MediaStream): void {
  for (const track of stream.getTracks()) track.stop();
}
