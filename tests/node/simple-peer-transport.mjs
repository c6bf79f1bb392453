// A test-side MCP Transport over simple-peer, as the TypeScript seed (mcp-webrtc 0.1.0)
// carries MCP: one JSON-RPC message per data-channel message, simple-peer's signal objects
// relayed unchanged. Here they travel through the mcp-webrtc rendezvous (docs/protocol.md
// §7) over a WebSocket, so a plain simple-peer peer meets the Python package.
import SimplePeer from "simple-peer";
import wrtc from "@roamhq/wrtc";
import WebSocket from "ws";

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function reply(ws, wanted) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === wanted) resolve(message);
      else reject(new Error(`rendezvous: ${data}`));
    });
  });
}

/** The MCP SDK Transport interface over one simple-peer connection. */
export class SimplePeerTransport {
  /** `peerOptions`: further simple-peer options. */
  constructor({ initiator, sendSignal, peerOptions = {} }) {
    this.peer = new SimplePeer({ initiator, wrtc, trickle: true, config: { iceServers: [] }, ...peerOptions });
    this.peer.on("signal", (signal) => sendSignal(signal));
    this.onmessage = undefined;
    this.onclose = undefined;
    this.onerror = undefined;
  }

  signal(signal) {
    this.peer.signal(signal);
  }

  start() {
    return new Promise((resolve, reject) => {
      this.peer.once("connect", resolve);
      this.peer.once("error", reject);
      this.peer.on("data", (data) => {
        try {
          this.onmessage?.(JSON.parse(data.toString()));
        } catch (error) {
          this.onerror?.(error);
        }
      });
      this.peer.on("close", () => this.onclose?.());
      this.peer.on("error", (error) => this.onerror?.(error));
    });
  }

  async send(message) {
    this.peer.send(JSON.stringify(message));
  }

  async close() {
    this.peer.destroy();
  }
}

/** Join `room` as a client; returns a transport (the Python host makes the offer). */
export async function joinRoom(url, room, token) {
  const ws = await open(url);
  ws.send(JSON.stringify({ type: "join", room, token }));
  await reply(ws, "joined");
  const transport = new SimplePeerTransport({
    initiator: false,
    sendSignal: (signal) => ws.send(JSON.stringify({ type: "signal", signal })),
  });
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.type === "signal" && message.signal.type !== "bye") transport.signal(message.signal);
  });
  transport.ws = ws;
  return transport;
}

/** Register `room` as its host; `onsession(transport)` for each joining client. */
export async function hostRoom(url, room, token, clientToken, onsession) {
  const ws = await open(url);
  ws.send(JSON.stringify({ type: "register", room, token, clientToken }));
  await reply(ws, "registered");
  const sessions = new Map();
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.type === "peer-joined") {
      const transport = new SimplePeerTransport({
        initiator: true,
        sendSignal: (signal) => ws.send(JSON.stringify({ type: "signal", session: message.session, signal })),
      });
      sessions.set(message.session, transport);
      onsession(transport);
    } else if (message.type === "signal") {
      const transport = sessions.get(message.session);
      if (transport && message.signal.type !== "bye") transport.signal(message.signal);
    } else if (message.type === "peer-left") {
      sessions.get(message.session)?.close();
      sessions.delete(message.session);
    }
  });
  return ws;
}
