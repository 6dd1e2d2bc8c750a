// @ts-check
// A fake HeyGen LiveAvatar API (LITE mode), the Node twin of the Rust fake in
// providers/tests/cloud/fakes/heygen.rs, for the browser tests: Adam's real HeyGen client
// talks to it (`ADAM__PROVIDERS__HEYGEN__BASE_URL`), and its start answer sends the browser to
// a fake LiveKit room.
//
// - `POST /v1/sessions/token`: `X-API-KEY` and `{"mode": "LITE", "avatar_id"}` checked →
//   `{"code": 100, "data": {"session_id", "session_token"}, "message"}`;
// - `POST /v1/sessions/start`, `/keep-alive`, `/stop`: `Authorization: Bearer <session_token>`;
//   start → `{"data": {"session_id", "livekit_url", "livekit_client_token",
//   "livekit_agent_token", "ws_url", "max_session_duration"}}`;
// - errors: HTTP statuses with `{"code", "message"}`;
// - the command WebSocket is the `ws_url` exactly as handed out — an opaque URL that carries
//   its own credential (no Authorization header, as LiveAvatar's) — and sends `session.state_updated`
//   `connecting` then `connected`, and records `agent.speak` (base64 PCM16, samples counted),
//   `agent.speak_end` and `agent.interrupt`; a stop answers with `closed` and closes it.

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { WebSocketServer } from "ws";
import { accessToken } from "./fake-livekit.mjs";

/**
 * One LiveAvatar session as the fake saw it.
 * @typedef {{
 *   id: string, token: string, wsPath: string, avatarId: string, started: boolean, room: string,
 *   socketOpened: boolean, socketClosed: boolean, keepAlives: number, stops: string[],
 *   speaks: number[], speakEnds: string[], interrupts: number, other: string[],
 *   socket: import("ws").WebSocket | null,
 * }} Session
 */

export class FakeHeyGen {
  /** @type {Session[]} */
  sessions = [];

  /**
   * @param {import("node:http").Server} server
   * @param {{ apiKey: string, livekit: { url: string, apiKey: string, secret: string } }} options
   */
  constructor(server, options) {
    this.server = server;
    this.options = options;
  }

  /**
   * Listens on `port` (the one Adam was started with).
   * @param {{ port: number, apiKey: string, livekit: { url: string, apiKey: string, secret: string } }} options
   */
  static async start(options) {
    const server = createServer();
    const fake = new FakeHeyGen(server, options);
    server.on("request", (req, res) => void fake.#request(req, res));
    const wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname.match(/^\/socket\/([^/]+)$/)?.[1];
      const session = fake.sessions.find((s) => s.wsPath === path) ?? null;
      if (!session) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"code":401,"message":"Invalid session token"}');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => fake.#socket(ws, session));
    });
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, "127.0.0.1", () => resolve(undefined));
    });
    return fake;
  }

  async close() {
    for (const session of this.sessions) session.socket?.terminate();
    // Adam's HTTP client and the browser keep connections open: close them too.
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }

  /** The newest session. */
  latest() {
    return this.sessions.at(-1) ?? null;
  }

  /** Samples of 24 kHz PCM16 the session received in `agent.speak`.
   *  @param {Session} session */
  static spokenSamples(session) {
    return session.speaks.reduce((a, b) => a + b, 0);
  }

  /**
   * Ends the session's command socket without a close frame, as a crashed LiveAvatar would.
   * @param {Session} session
   */
  drop(session) {
    session.socket?.terminate();
  }

  /** @param {string | undefined} header */
  #byBearer(header) {
    const token = header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : null;
    return this.sessions.find((s) => s.token === token) ?? null;
  }

  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:http").ServerResponse} res
   */
  async #request(req, res) {
    /** @param {number} status @param {unknown} body */
    const reply = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    /** @param {number} status @param {string} message */
    const error = (status, message) => reply(status, { code: status, message });
    /** @param {unknown} data */
    const ok = (data) => reply(200, { code: 100, data, message: "success" });

    let body = /** @type {any} */ ({});
    try {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
    } catch {
      return error(400, "Invalid JSON");
    }
    if (req.method !== "POST") return error(405, "Method not allowed");

    switch (req.url) {
      case "/v1/sessions/token": {
        if (req.headers["x-api-key"] !== this.options.apiKey) return error(401, "Invalid API key");
        if (body.mode !== "LITE" || typeof body.avatar_id !== "string" || !body.avatar_id) {
          return error(422, "mode LITE and an avatar_id are required");
        }
        const n = this.sessions.length + 1;
        /** @type {Session} */
        const session = {
          id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
          token: `session-token-${n}`,
          wsPath: randomUUID(),
          avatarId: body.avatar_id,
          started: false,
          room: `liveavatar-${n}`,
          socketOpened: false,
          socketClosed: false,
          keepAlives: 0,
          stops: [],
          speaks: [],
          speakEnds: [],
          interrupts: 0,
          other: [],
          socket: null,
        };
        this.sessions.push(session);
        return ok({ session_id: session.id, session_token: session.token });
      }
      case "/v1/sessions/start": {
        const session = this.#byBearer(req.headers.authorization);
        if (!session) return error(401, "Invalid session token");
        session.started = true;
        const { livekit } = this.options;
        const address = this.server.address();
        const port = address && typeof address === "object" ? address.port : 0;
        return ok({
          session_id: session.id,
          livekit_url: livekit.url,
          livekit_client_token: accessToken({ apiKey: livekit.apiKey, secret: livekit.secret, room: session.room, identity: "customer" }),
          livekit_agent_token: accessToken({ apiKey: livekit.apiKey, secret: livekit.secret, room: session.room, identity: "agent" }),
          ws_url: `ws://127.0.0.1:${port}/socket/${session.wsPath}`,
          max_session_duration: 1200,
        });
      }
      case "/v1/sessions/keep-alive":
      case "/v1/sessions/stop": {
        const session = this.#byBearer(req.headers.authorization);
        if (!session) return error(401, "Invalid session token");
        if (body.session_id !== session.id) return error(422, "session_id does not match the token");
        if (req.url.endsWith("keep-alive")) {
          session.keepAlives++;
        } else {
          session.stops.push(typeof body.reason === "string" ? body.reason : "UNKNOWN");
          if (session.socket?.readyState === session.socket?.OPEN) {
            session.socket?.send(JSON.stringify({ type: "session.state_updated", state: "closed" }));
            session.socket?.close(1000);
          }
        }
        return ok(null);
      }
      default:
        return error(404, "Not found");
    }
  }

  /**
   * @param {import("ws").WebSocket} ws
   * @param {Session} session
   */
  #socket(ws, session) {
    session.socket = ws;
    session.socketOpened = true;
    ws.send(JSON.stringify({ type: "session.state_updated", state: "connecting" }));
    ws.send(JSON.stringify({ type: "session.state_updated", state: "connected" }));
    ws.on("message", (data, binary) => {
      if (binary) return;
      const command = JSON.parse(data.toString("utf8"));
      switch (command.type) {
        case "agent.speak": {
          const bytes = Buffer.from(command.audio ?? "", "base64");
          if (bytes.length % 2 !== 0) throw new Error("agent.speak audio is not whole PCM16 samples");
          session.speaks.push(bytes.length / 2);
          break;
        }
        case "agent.speak_end":
          session.speakEnds.push(String(command.event_id ?? ""));
          break;
        case "agent.interrupt":
          session.interrupts++;
          break;
        default:
          session.other.push(String(command.type));
      }
    });
    ws.on("close", () => {
      session.socketClosed = true;
    });
  }
}
