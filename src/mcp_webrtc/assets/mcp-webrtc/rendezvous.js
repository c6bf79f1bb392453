// rendezvous.js: the rendezvous protocol (docs/protocol.md §7), as client (RendezvousSignaling)
// and host (RendezvousHost).

import { MCPWebRTCError } from "./errors.js";
import { parseJson } from "./jsonrpc.js";

/** A WebSocket open on `url`; `WebSocketImpl`: the constructor to use (the ws package's in
 * Node 20, which has no WebSocket of its own), else the runtime's. */
function openSocket(url, WebSocketImpl) {
  return new Promise((resolve, reject) => {
    const Impl = WebSocketImpl ?? globalThis.WebSocket;
    if (!Impl) {
      reject(new MCPWebRTCError("this runtime has no WebSocket: pass one as the `WebSocket` option (e.g. the ws package's)", "config"));
      return;
    }
    let ws;
    try {
      ws = new Impl(url);
    } catch (error) {
      reject(new MCPWebRTCError(`not a rendezvous URL: ${url}`, "bad-url"));
      return;
    }
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new MCPWebRTCError(`cannot reach the rendezvous at ${url}`, "unreachable"));
  });
}

function firstReply(ws, wanted) {
  return new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const message = parseJson(event.data);
      if (message === null) {
        reject(new MCPWebRTCError("the rendezvous answered something that is not JSON", "protocol"));
        return;
      }
      if (message.type === "error") {
        reject(new MCPWebRTCError(`rendezvous refused: ${message.message} (${message.code})`, message.code));
      } else if (message.type === wanted) resolve(message);
      else reject(new MCPWebRTCError(`unexpected answer from the rendezvous: ${event.data}`, "protocol"));
    };
    ws.onclose = (event) => reject(new MCPWebRTCError(`the rendezvous closed the connection (${event.code})`, "closed"));
  });
}

/** A client's signaling through the rendezvous: joins `room` with the client `token`.
 * `options.WebSocket`: the WebSocket constructor (Node 20: the ws package's). */
export class RendezvousSignaling {
  constructor(url, room, token, { WebSocket = null } = {}) {
    Object.assign(this, { url, room, token, iceServers: [], session: null });
    this.WebSocket = WebSocket;
    this.onsignal = null;
    this.onclose = null;
    this._ws = null;
  }

  async connect() {
    const ws = await openSocket(this.url, this.WebSocket);
    ws.send(JSON.stringify({ type: "join", room: this.room, token: this.token }));
    let joined;
    try {
      joined = await firstReply(ws, "joined");
    } catch (error) {
      ws.close();
      throw error;
    }
    this._ws = ws;
    this.session = joined.session;
    this.iceServers = joined.iceServers || [];
    ws.onmessage = (event) => {
      const message = parseJson(event.data);
      if (message === null) return;
      if (message.type === "signal") this.onsignal?.(message.signal);
      else if (message.type === "error") {
        const why = message.code === "host-left" ? "the host left the room" : message.message;
        this.onclose?.(new MCPWebRTCError(why, message.code));
      }
    };
    ws.onclose = () => this.onclose?.(null);
  }

  send(signal) {
    if (this._ws?.readyState === 1) this._ws.send(JSON.stringify({ type: "signal", signal }));
  }

  close() {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify({ type: "leave" }));
    this._ws?.close();
  }
}

/** The host side: registers `room`; `onsession(signaling)` is called for each client.
 * `options.WebSocket`: as for RendezvousSignaling. */
export class RendezvousHost {
  constructor(url, room, token, clientToken, { WebSocket = null } = {}) {
    Object.assign(this, { url, room, token, clientToken, iceServers: [] });
    this.WebSocket = WebSocket;
    this.onsession = null;
    this._ws = null;
    this._sessions = new Map();
  }

  async connect() {
    const ws = await openSocket(this.url, this.WebSocket);
    ws.send(JSON.stringify({ type: "register", room: this.room, token: this.token, clientToken: this.clientToken }));
    let registered;
    try {
      registered = await firstReply(ws, "registered");
    } catch (error) {
      ws.close();
      throw error;
    }
    this._ws = ws;
    this.iceServers = registered.iceServers || [];
    ws.onmessage = (event) => {
      const message = parseJson(event.data);
      if (message !== null) this._dispatch(message);
    };
    ws.onclose = () => {
      for (const session of this._sessions.values()) session.onclose?.(null);
    };
  }

  _dispatch(message) {
    if (message.type === "peer-joined") {
      const host = this;
      const session = {
        session: message.session,
        // fresh TURN credentials for each session (an older rendezvous sends none)
        iceServers: message.iceServers ?? this.iceServers,
        // the label of the client token it joined with, and this host's share of the
        // room's pool: {hosts, sessions, roomSessions} (null from an older rendezvous)
        label: typeof message.label === "string" ? message.label : null,
        share: message.share ?? null,
        onsignal: null,
        onclose: null,
        async connect() {},
        send(signal) {
          host._ws?.send(JSON.stringify({ type: "signal", session: message.session, signal }));
        },
        close() {
          host._sessions.delete(message.session);
          if (host._ws?.readyState === 1) host._ws.send(JSON.stringify({ type: "leave", session: message.session }));
        },
      };
      this._sessions.set(message.session, session);
      this.onsession?.(session);
    } else if (message.type === "signal") {
      this._sessions.get(message.session)?.onsignal?.(message.signal);
    } else if (message.type === "peer-left" || (message.type === "error" && message.session
        && message.code !== "unknown-session")) { // e.g. rate-limited: that session was ended
      const session = this._sessions.get(message.session);
      this._sessions.delete(message.session);
      session?.onclose?.(null);
    }
  }

  close() {
    this._ws?.close();
  }
}
