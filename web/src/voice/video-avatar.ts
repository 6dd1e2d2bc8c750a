//! A video avatar rendered by HeyGen LiveAvatar (`avatar.stream`): joins its LiveKit room,
//! hands the avatar's video to the page and plays its voice. Adam's own audio of the
//! responses the avatar speaks is withheld by the conversation, not here.
//!
//! Never imported statically (only its types are): with `livekit-client` it is loaded only
//! when a dealership's avatar is a video one, by the page with `import()` (a chunk of its
//! own) and by the widget as `widget-livekit.js` (a script of its own,
//! vite.livekit.config.ts).

import { Room, RoomEvent, Track, type RemoteTrack } from "livekit-client";

/** This module, however it was loaded. */
export type VideoAvatarModule = typeof import("./video-avatar");

/** Room, signalling and media statistics, for diagnostics and the browser tests. */
export interface VideoAvatarStats {
  connection: string;
  /** Remote participants publishing to the room (the avatar). */
  participants: string[];
  video: { framesDecoded: number; width: number; height: number } | null;
  audio: { packetsReceived: number; totalAudioEnergy: number; playing: boolean } | null;
}

export interface VideoAvatarHandlers {
  /** The avatar's video arrived (a stream to show), or went away (`null`). */
  onVideo(stream: MediaStream | null): void;
  /** The room was lost after joining (not by `leave`). */
  onLost(why: string): void;
}

/** How long joining may take: signalling, then the media connection (LiveKit's own limits
 *  are 15 s each, with a retry). */
const JOIN_TIMEOUT_MS = 15000;

export class VideoAvatar {
  private readonly audio: HTMLMediaElement[] = [];
  private video: RemoteTrack | null = null;
  private audioTrack: RemoteTrack | null = null;
  private joined = false;
  private left = false;

  private constructor(private readonly room: Room) {}

  /** Joins the room at `url` with `token`, subscribing to the avatar's tracks. Rejects when
   *  the room cannot be joined (unreachable, token refused, no media connection). */
  static async join(url: string, token: string, handlers: VideoAvatarHandlers): Promise<VideoAvatar> {
    const room = new Room({ adaptiveStream: false, dynacast: false });
    const avatar = new VideoAvatar(room);
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (avatar.left) return;
      if (track.kind === Track.Kind.Video && !avatar.video) {
        avatar.video = track;
        handlers.onVideo(new MediaStream([track.mediaStreamTrack]));
      } else if (track.kind === Track.Kind.Audio) {
        avatar.audioTrack = track;
        const element = track.attach();
        avatar.audio.push(element);
        void element.play().catch(() => undefined); // the customer started the conversation with a click
      }
    });
    room.on(RoomEvent.TrackUnsubscribed, (track) => {
      track.detach().forEach((element) => element.remove());
      if (track === avatar.video && !avatar.left) {
        avatar.video = null;
        handlers.onVideo(null);
      }
    });
    room.on(RoomEvent.Disconnected, (reason) => {
      // A failed join is reported by `join` itself.
      if (avatar.joined && !avatar.left) handlers.onLost(`the avatar's room closed (disconnect reason ${reason ?? "unknown"})`);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`joining took longer than ${JOIN_TIMEOUT_MS / 1000} s`)), JOIN_TIMEOUT_MS);
    });
    try {
      await Promise.race([room.connect(url, token, { autoSubscribe: true }), timeout]);
      avatar.joined = true;
      return avatar;
    } catch (error) {
      avatar.leave();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Leaves the room and stops the avatar's voice; no handler is called any more. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    for (const element of this.audio) {
      element.pause();
      element.srcObject = null;
    }
    this.audio.length = 0;
    void this.room.disconnect();
  }

  async stats(): Promise<VideoAvatarStats> {
    const stats: VideoAvatarStats = {
      connection: this.room.state,
      participants: [...this.room.remoteParticipants.values()].map((p) => p.identity),
      video: null,
      audio: null,
    };
    for (const report of await inbound(this.video)) {
      if (report.kind !== "video") continue;
      stats.video = { framesDecoded: report.framesDecoded ?? 0, width: report.frameWidth ?? 0, height: report.frameHeight ?? 0 };
    }
    for (const report of await inbound(this.audioTrack)) {
      if (report.kind !== "audio") continue;
      const playing = this.audio.some((element) => !element.paused && !element.muted && element.volume > 0);
      stats.audio = { packetsReceived: report.packetsReceived ?? 0, totalAudioEnergy: report.totalAudioEnergy ?? 0, playing };
    }
    return stats;
  }
}

async function inbound(track: RemoteTrack | null): Promise<RTCInboundRtpStreamStats[]> {
  const reports: RTCInboundRtpStreamStats[] = [];
  if (!track?.receiver) return reports;
  (await track.receiver.getStats()).forEach((report: RTCInboundRtpStreamStats) => {
    if (report.type === "inbound-rtp") reports.push(report);
  });
  return reports;
}
