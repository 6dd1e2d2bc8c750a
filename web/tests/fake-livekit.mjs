// @ts-check
// A fake LiveKit server, enough of it for a browser running the real `livekit-client` to join
// a room and receive a remote participant's video and audio, as it does from HeyGen's rooms:
//
// - signalling over TLS (the browser is given a `wss://` URL, as HeyGen gives one): the
//   WebSocket `/rtc/v1?access_token=…&join_request=…` carrying protobuf `SignalRequest` and
//   `SignalResponse` (`@livekit/protocol`, the same version `livekit-client` uses). The token
//   is a LiveKit access token (HS256 JWT with a `video` grant), checked against the secret;
//   a refused one gets `401` on the upgrade and on `/rtc/v1/validate`, as LiveKit does.
// - `JoinResponse` with the avatar as a remote participant publishing a camera video track and
//   a microphone audio track; the browser's publisher offer (sent with the join request, or
//   later as `offer`) is answered with `answer` and `midToTrackId`; `trickle` candidates,
//   `ping`/`pingReq` (answered with `pong`/`pongResp`) and `leave` are handled.
// - media: the answer comes from a real `RTCPeerConnection` in a second browser page that
//   sends a canvas video and a tone (`mediaPage`), so the browser under test receives real
//   RTP; its `a=msid` lines are rewritten to the avatar's participant and track sids, which
//   is how `livekit-client` maps a received track to its publication.

import { createHmac } from "node:crypto";
import { createServer } from "node:https";
import { gunzipSync } from "node:zlib";
import {
  JoinRequest,
  JoinResponse,
  ParticipantInfo,
  ParticipantInfo_State,
  ParticipantPermission,
  Pong,
  Room,
  ServerInfo,
  SessionDescription,
  SignalRequest,
  SignalResponse,
  SignalTarget,
  TrackInfo,
  TrackSource,
  TrackType,
  WrappedJoinRequest,
  WrappedJoinRequest_Compression,
} from "@livekit/protocol";
import { WebSocketServer } from "ws";

/** The avatar participant and its tracks, as announced in `JoinResponse`. */
export const AVATAR = { sid: "PA_heygenavatar", identity: "heygen-avatar", video: "TR_avatarvideo", audio: "TR_avataraudio" };

/**
 * A LiveKit access token: HS256 JWT signed with the API secret, `sub` the participant.
 * @param {{ apiKey: string, secret: string, room: string, identity: string }} grant
 */
export function accessToken({ apiKey, secret, room, identity }) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "HS256", typ: "JWT" };
  const claims = { iss: apiKey, sub: identity, nbf: now, exp: now + 3600, video: { room, roomJoin: true, canSubscribe: true, canPublish: true } };
  const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** @param {string} text */
function b64url(text) {
  return Buffer.from(text).toString("base64url");
}

/**
 * The claims of a valid token, or null.
 * @param {string} token
 * @param {string} secret
 * @returns {{ sub: string, video: { room: string } } | null}
 */
function verify(token, secret) {
  const [header, claims, signature] = token.split(".");
  if (!header || !claims || !signature) return null;
  const expected = createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url");
  if (expected !== signature) return null;
  const parsed = JSON.parse(Buffer.from(claims, "base64url").toString("utf8"));
  if (typeof parsed.exp !== "number" || parsed.exp * 1000 < Date.now() || !parsed.video?.roomJoin) return null;
  return parsed;
}

/**
 * What the fake needs from the page that sends the avatar's media.
 * @typedef {{
 *   answer(offerSdp: string): Promise<{ sdp: string, mids: { audio: string | null, video: string | null } }>,
 *   addCandidate(candidate: RTCIceCandidateInit): Promise<void>,
 *   reset(): Promise<void>,
 * }} MediaSource
 */

/**
 * One signalling connection as the fake saw it.
 * @typedef {{ identity: string, room: string, offers: number, trickles: number, pings: number, left: boolean, closed: boolean }} Join
 */

export class FakeLiveKit {
  /** @type {"accept" | "refuse"} how the next joins are answered */
  mode = "accept";
  /** @type {Join[]} */
  joins = [];
  /** Upgrades refused with 401. */
  refused = 0;
  /** @type {Set<import("ws").WebSocket>} */
  #sockets = new Set();

  /**
   * @param {import("node:https").Server} server
   * @param {{ apiKey: string, secret: string, media: MediaSource }} options
   */
  constructor(server, options) {
    this.server = server;
    this.options = options;
  }

  /**
   * Listens on a free loopback port with the given certificate.
   * @param {{ cert: string, key: string, apiKey: string, secret: string, media: MediaSource }} options
   */
  static async start(options) {
    const server = createServer({ cert: options.cert, key: options.key });
    const fake = new FakeLiveKit(server, options);
    const wss = new WebSocketServer({ noServer: true });
    server.on("request", (req, res) => {
      const url = new URL(req.url ?? "/", "https://localhost");
      // livekit-client asks this after a failed upgrade, to tell a refusal from an outage.
      if (url.pathname === "/rtc/v1/validate" || url.pathname === "/rtc/validate") {
        const claims = fake.#claims(url);
        res.writeHead(claims ? 200 : 401, { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" });
        res.end(claims ? "success" : "invalid token: the access token was refused");
        return;
      }
      res.writeHead(404).end();
    });
    server.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "https://localhost");
      const claims = url.pathname === "/rtc/v1" ? fake.#claims(url) : null;
      if (!claims) {
        fake.refused++;
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\ninvalid token");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => void fake.#serve(ws, url, claims));
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    return fake;
  }

  /** The `wss://` URL HeyGen hands out for this server. */
  get url() {
    const address = this.server.address();
    if (!address || typeof address !== "object") throw new Error("not listening");
    return `wss://127.0.0.1:${address.port}`;
  }

  async close() {
    for (const socket of this.#sockets) socket.terminate();
    // Adam's HTTP client and the browser keep connections open: close them too.
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }

  /** @param {URL} url */
  #claims(url) {
    if (this.mode === "refuse") return null;
    return verify(url.searchParams.get("access_token") ?? "", this.options.secret);
  }

  /**
   * @param {import("ws").WebSocket} ws
   * @param {URL} url
   * @param {{ sub: string, video: { room: string } }} claims
   */
  async #serve(ws, url, claims) {
    this.#sockets.add(ws);
    /** @type {Join} */
    const join = { identity: claims.sub, room: claims.video.room, offers: 0, trickles: 0, pings: 0, left: false, closed: false };
    this.joins.push(join);
    const { media } = this.options;
    // Media operations run one at a time, in the order signalling asked for them.
    let queue = media.reset();
    /** @param {() => Promise<void>} step */
    const then = (step) => {
      queue = queue.then(step).catch((error) => {
        console.error("fake LiveKit:", error);
        ws.close(1011, "media relay failed");
      });
    };
    /** @param {SignalResponse["message"]} message */
    const send = (message) => {
      if (ws.readyState === ws.OPEN) ws.send(new SignalResponse({ message }).toBinary());
    };
    /** @param {SessionDescription} offer */
    const answer = (offer) =>
      then(async () => {
        join.offers++;
        const { sdp, mids } = await media.answer(offer.sdp);
        /** @type {Record<string, string>} */
        const midToTrackId = {};
        if (mids.video) midToTrackId[mids.video] = AVATAR.video;
        if (mids.audio) midToTrackId[mids.audio] = AVATAR.audio;
        const value = new SessionDescription({ type: "answer", sdp: rewriteMsids(sdp, mids), id: offer.id, midToTrackId });
        send({ case: "answer", value });
      });

    ws.on("message", (data) => {
      const request = SignalRequest.fromBinary(new Uint8Array(/** @type {Buffer} */ (data)));
      const message = request.message;
      switch (message.case) {
        case "offer":
          answer(message.value);
          break;
        case "trickle":
          join.trickles++;
          if (message.value.target === SignalTarget.PUBLISHER) {
            const candidate = JSON.parse(message.value.candidateInit);
            then(() => media.addCandidate(candidate));
          }
          break;
        case "ping":
          join.pings++;
          send({ case: "pong", value: BigInt(Date.now()) });
          break;
        case "pingReq":
          join.pings++;
          send({ case: "pongResp", value: new Pong({ lastPingTimestamp: message.value.timestamp, timestamp: BigInt(Date.now()) }) });
          break;
        case "leave":
          join.left = true;
          ws.close(1000, "left");
          break;
        default:
          break; // track settings, subscriptions, sync state: nothing to do for one avatar
      }
    });
    ws.on("close", () => {
      join.closed = true;
      this.#sockets.delete(ws);
      then(() => media.reset().catch(() => undefined)); // the media page may be gone with the browser
    });

    send({ case: "join", value: joinResponse(claims) });
    const publisherOffer = decodeJoinRequest(url.searchParams.get("join_request"))?.publisherOffer;
    if (publisherOffer) answer(publisherOffer);
  }
}

/**
 * The join request `livekit-client` sends in the URL (base64url `WrappedJoinRequest`, gzip).
 * @param {string | null} param
 */
function decodeJoinRequest(param) {
  if (!param) return null;
  const wrapped = WrappedJoinRequest.fromBinary(Buffer.from(param, "base64url"));
  const bytes = wrapped.compression === WrappedJoinRequest_Compression.GZIP ? gunzipSync(wrapped.joinRequest) : wrapped.joinRequest;
  return JoinRequest.fromBinary(new Uint8Array(bytes));
}

/** @param {{ sub: string, video: { room: string } }} claims */
function joinResponse(claims) {
  const now = BigInt(Math.floor(Date.now() / 1000));
  return new JoinResponse({
    room: new Room({ sid: "RM_heygenroom", name: claims.video.room, creationTime: now }),
    participant: new ParticipantInfo({
      sid: "PA_customer",
      identity: claims.sub,
      state: ParticipantInfo_State.ACTIVE,
      joinedAt: now,
      permission: new ParticipantPermission({ canSubscribe: true, canPublish: true, canPublishData: true }),
    }),
    otherParticipants: [
      new ParticipantInfo({
        sid: AVATAR.sid,
        identity: AVATAR.identity,
        name: "Avatar",
        state: ParticipantInfo_State.ACTIVE,
        joinedAt: now,
        tracks: [
          new TrackInfo({ sid: AVATAR.video, type: TrackType.VIDEO, source: TrackSource.CAMERA, name: "avatar", mimeType: "video/VP8", width: 320, height: 240 }),
          new TrackInfo({ sid: AVATAR.audio, type: TrackType.AUDIO, source: TrackSource.MICROPHONE, name: "avatar-voice", mimeType: "audio/opus" }),
        ],
      }),
    ],
    serverVersion: "1.9.0",
    serverInfo: new ServerInfo({ version: "1.9.0", protocol: 16, nodeId: "fake-livekit" }),
    subscriberPrimary: true,
    pingTimeout: 15,
    pingInterval: 5,
  });
}

/**
 * Gives the sending m-sections of `sdp` the avatar's stream and track ids (`PA_…|TR_…`,
 * `TR_…`), as LiveKit's own SFU does.
 * @param {string} sdp
 * @param {{ audio: string | null, video: string | null }} mids
 */
function rewriteMsids(sdp, mids) {
  /** @type {Record<string, string>} */
  const tracks = {};
  if (mids.video) tracks[mids.video] = AVATAR.video;
  if (mids.audio) tracks[mids.audio] = AVATAR.audio;
  const [session, ...sections] = sdp.split(/\r\n(?=m=)/);
  return [
    session,
    ...sections.map((section) => {
      const mid = section.match(/\r\na=mid:(\S+)/)?.[1];
      const track = mid === undefined ? undefined : tracks[mid];
      if (!track) return section;
      const msid = `${AVATAR.sid}|${track} ${track}`;
      const lines = section
        .split("\r\n")
        .filter((line) => !line.startsWith("a=msid:"))
        .map((line) => line.replace(/^(a=ssrc:\d+ msid:).*$/, `$1${msid}`));
      const at = lines.findIndex((line) => line.startsWith("a=mid:"));
      lines.splice(at + 1, 0, `a=msid:${msid}`);
      return lines.join("\r\n");
    }),
  ].join("\r\n");
}

/**
 * A page of the test's browser that plays the avatar: a canvas with a moving square
 * (`captureStream`) and a 440 Hz tone, sent by a plain `RTCPeerConnection` that answers the
 * offers the fake LiveKit relays to it.
 * @param {import("playwright-core").Page} page
 * @returns {Promise<MediaSource>}
 */
export async function mediaPage(page) {
  await page.setContent("<!doctype html><title>avatar media</title><body style='margin:0'></body>");
  await page.evaluate(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    document.body.append(canvas);
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    let frame = 0;
    // A timer, not requestAnimationFrame: the page is never in front.
    setInterval(() => {
      frame++;
      g.fillStyle = "#1d4ed8";
      g.fillRect(0, 0, 320, 240);
      g.fillStyle = "#f59e0b";
      g.fillRect(20 + ((frame * 6) % 220), 70, 80, 100);
    }, 33);
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 440;
    const out = audio.createMediaStreamDestination();
    tone.connect(out);
    tone.start();
    const video = canvas.captureStream(30).getVideoTracks()[0];
    const voice = out.stream.getAudioTracks()[0];
    Object.assign(window, { __avatarMedia: { video, voice, audio, peer: null } });
  });
  return {
    reset: () =>
      page.evaluate(() => {
        const media = /** @type {any} */ (window).__avatarMedia;
        media.peer?.close();
        media.peer = null;
      }),
    addCandidate: (candidate) =>
      page.evaluate(async (c) => {
        await /** @type {any} */ (window).__avatarMedia.peer?.addIceCandidate(c);
      }, candidate),
    answer: (offerSdp) =>
      page.evaluate(async (sdp) => {
        const media = /** @type {any} */ (window).__avatarMedia;
        await media.audio.resume();
        /** @type {RTCPeerConnection} */
        const peer = (media.peer ??= new RTCPeerConnection());
        await peer.setRemoteDescription({ type: "offer", sdp });
        /** @type {{ audio: string | null, video: string | null }} */
        const mids = { audio: null, video: null };
        for (const transceiver of peer.getTransceivers()) {
          const kind = /** @type {"audio" | "video"} */ (transceiver.receiver.track.kind);
          if (mids[kind] !== null || transceiver.mid === null) continue;
          await transceiver.sender.replaceTrack(kind === "video" ? media.video : media.voice);
          transceiver.direction = "sendonly";
          mids[kind] = transceiver.mid;
        }
        await peer.setLocalDescription(await peer.createAnswer());
        // No trickle from this side: the answer carries every candidate.
        await new Promise((resolve) => {
          if (peer.iceGatheringState === "complete") return resolve(undefined);
          const timer = setTimeout(resolve, 3000);
          peer.addEventListener("icegatheringstatechange", () => {
            if (peer.iceGatheringState === "complete") {
              clearTimeout(timer);
              resolve(undefined);
            }
          });
        });
        return { sdp: /** @type {RTCSessionDescription} */ (peer.localDescription).sdp, mids };
      }, offerSdp),
  };
}
