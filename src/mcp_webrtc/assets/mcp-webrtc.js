// mcp-webrtc.js: MCP over WebRTC data channels, for browsers and Node (and any runtime with
// RTCPeerConnection and WebSocket). A plain ES module with no dependencies: in Node, pass a
// WebRTC implementation (`@roamhq/wrtc`) and, for the rendezvous, a WebSocket (`ws`).
//
// - RendezvousSignaling / RendezvousHost: the rendezvous protocol (docs/protocol.md §7).
// - WebRTCTransport: the MCP TypeScript SDK's Transport interface (start, send, close,
//   onmessage, onclose, onerror) over one data channel with mcp-webrtc framing (§5):
//   whole JSON text messages, chunk frames for large ones, both directions.
// - BaseSignaling, MemorySignaling, WebRTCClientTransport, WebRTCServerTransport: the
//   names and constructor shapes of the TypeScript seed (`mcp-webrtc` 0.1.0 on npm).
// - McpClient / McpToolServer: a tiny JSON-RPC layer, for pages without the SDK.

/** This module's version: the Python package's (a test keeps the two equal). */
export const VERSION = "0.2.0";
export const FRAMING_VERSION = 1;
const FIRST = 0x01;
const NEXT = 0x02;
const ABORT = 0x03;
const FIRST_DEFLATE = 0x04;
const FIRST_HEADER = 13;
const NEXT_HEADER = 5;
const JSON_START = new Set([0x7b, 0x5b, 0x20, 0x09, 0x0a, 0x0d, 0xef]);
const MiB = 1024 * 1024;

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const MESSAGE_TOO_LARGE = -32050;

export const DEFAULTS = Object.freeze({
  iceServers: [],
  connectTimeout: 20000,
  maxMessageSize: 128 * MiB,
  chunkSize: 64 * 1024,
  highWatermark: 128 * 1024,
  lowWatermark: 32 * 1024,
  channelLabel: null,
  // where RTCPeerConnection comes from: an object holding one (Node: @roamhq/wrtc's
  // default export); null: the runtime's own (globalThis.RTCPeerConnection)
  wrtc: null,
  // further RTCConfiguration fields (iceTransportPolicy, certificates...); the ICE servers
  // are `iceServers` above, plus those the rendezvous hands out
  rtcConfiguration: null,
  // this side's identity (generateIdentity()): signs our descriptions (§8)
  identity: null,
  // public key lines of which the peer must prove one; empty: any peer
  expectPeerKeys: [],
});

/** Every error this module raises or reports. `code` names the cause. */
export class MCPWebRTCError extends Error {
  constructor(message, code = "error", data = undefined) {
    super(message);
    this.name = "MCPWebRTCError";
    this.code = code;
    this.data = data;
  }
}

const encoder = new TextEncoder();
// Steps of a connection: in a browser, the console's verbose level (hidden unless asked
// for); in Node, only with NODE_DEBUG=mcp-webrtc, on stderr (stdout may be carrying MCP).
const IN_NODE = typeof globalThis.process?.versions?.node === "string";
const DEBUG = !IN_NODE || /\bmcp-webrtc\b/.test(globalThis.process.env?.NODE_DEBUG ?? "");
const debug = (...args) => {
  if (DEBUG) (IN_NODE ? console.error : console.debug)("mcp-webrtc:", ...args);
};
const decoder = new TextDecoder();

// ---------------------------------------------------------------- framing (pure)

function header(kind, id, size) {
  const length = kind === NEXT || kind === ABORT ? NEXT_HEADER : FIRST_HEADER;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, kind);
  view.setUint32(1, id);
  if (length === FIRST_HEADER) view.setBigUint64(5, BigInt(size));
  return bytes;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function firstFrame(id, size, payload) {
  return concat(header(FIRST, id, size), payload);
}

export function nextFrame(id, payload) {
  return concat(header(NEXT, id, 0), payload);
}

export function abortFrame(id) {
  return header(ABORT, id, 0);
}

export class FrameError extends MCPWebRTCError {
  constructor(message) {
    super(message, "frame-error");
  }
}

export class OversizeMessage extends MCPWebRTCError {
  constructor(size, limit, head) {
    super(`incoming message of ${size} bytes exceeds the limit of ${limit} bytes`, "too-large");
    this.size = size;
    this.limit = limit;
    this.head = head;
  }
}

/** Reassembles chunk frames. feed() returns a complete payload (string or Uint8Array)
 * or null; it throws FrameError or OversizeMessage (then drops that message's frames). */
export class FrameDecoder {
  constructor(maxMessageSize, maxPartial = 64) {
    this.maxMessageSize = maxMessageSize;
    this.maxPartial = maxPartial;
    this.partials = new Map();
    this.discarding = new Map();
  }

  /** A broken message: its later frames are dropped silently (one error per message). */
  fail(id, reason) {
    this.partials.delete(id);
    this.discard(id, Infinity);
    return new FrameError(`message ${id}: ${reason}`);
  }

  discard(id, left) {
    this.discarding.set(id, left);
    if (this.discarding.size > 1024) this.discarding.delete(this.discarding.keys().next().value);
  }

  get bufferedBytes() {
    let total = 0;
    for (const p of this.partials.values()) total += p.received;
    return total;
  }

  feed(data) {
    if (typeof data === "string") {
      if (data.length > this.maxMessageSize / 4) {
        const size = encoder.encode(data).length;
        if (size > this.maxMessageSize) {
          throw new OversizeMessage(size, this.maxMessageSize, encoder.encode(data.slice(0, 4096)));
        }
      }
      return data;
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length === 0) throw new FrameError("empty binary frame");
    const kind = bytes[0];
    if (JSON_START.has(kind)) {
      if (bytes.length > this.maxMessageSize) {
        throw new OversizeMessage(bytes.length, this.maxMessageSize, bytes.slice(0, 4096));
      }
      return bytes;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (kind === FIRST || kind === FIRST_DEFLATE) {
      if (bytes.length < FIRST_HEADER) throw new FrameError("FIRST frame is shorter than its header");
      const id = view.getUint32(1);
      if (kind === FIRST_DEFLATE) throw this.fail(id, "FIRST_DEFLATE was not announced");
      const size = Number(view.getBigUint64(5));
      const payload = bytes.subarray(FIRST_HEADER);
      this.discarding.delete(id);
      if (this.partials.has(id)) throw this.fail(id, "FIRST frame for a message that is still open");
      if (payload.length > size) throw this.fail(id, "FIRST frame carries more bytes than its size");
      if (size > this.maxMessageSize) {
        if (payload.length < size) this.discard(id, size - payload.length);
        throw new OversizeMessage(size, this.maxMessageSize, payload.slice(0, 4096));
      }
      if (payload.length === size) return payload.slice();
      if (this.partials.size >= this.maxPartial) {
        throw this.fail(id, `more than ${this.maxPartial} messages in flight`);
      }
      // memory grows with the bytes that actually arrive, not with the announced size
      this.partials.set(id, { size, chunks: [payload.slice()], received: payload.length });
      return null;
    }
    if (kind === NEXT) {
      if (bytes.length < NEXT_HEADER) throw new FrameError("NEXT frame is shorter than its header");
      const id = view.getUint32(1);
      const payload = bytes.subarray(NEXT_HEADER);
      const partial = this.partials.get(id);
      // Senders never make empty NEXT frames; a flood of them would cost work per frame
      // without progress, so the message is discarded and its later frames dropped.
      if (partial && payload.length === 0) throw this.fail(id, "NEXT frame without payload");
      if (!partial) {
        if (this.discarding.has(id)) {
          const left = this.discarding.get(id) - payload.length;
          if (left <= 0) this.discarding.delete(id);
          else this.discarding.set(id, left);
          return null;
        }
        throw new FrameError(`NEXT frame for unknown message ${id}`);
      }
      const end = partial.received + payload.length;
      if (end > partial.size) throw this.fail(id, "overruns its announced size");
      partial.chunks.push(payload.slice());
      partial.received = end;
      if (end < partial.size) return null;
      this.partials.delete(id);
      const message = new Uint8Array(partial.size);
      let offset = 0;
      for (const chunk of partial.chunks) {
        message.set(chunk, offset);
        offset += chunk.length;
      }
      return message;
    }
    if (kind === ABORT) {
      if (bytes.length !== NEXT_HEADER) throw new FrameError("ABORT frame has a wrong length");
      const id = view.getUint32(1);
      this.partials.delete(id);
      this.discarding.delete(id);
      return null;
    }
    throw new FrameError(`unknown frame type 0x${kind.toString(16).padStart(2, "0")}`);
  }
}

/** What a remote SDP says about the peer's receiving side (docs/protocol.md §3). */
const DIGITS = /^[0-9]{1,16}$/;

/** An announced size: ASCII digits within [1 KiB, 2^53] (or 0 where `zeroOk`), else null. */
function announcedSize(text, zeroOk = false) {
  const value = text.trim();
  if (!DIGITS.test(value)) return null;
  const size = BigInt(value); // exact: Number() rounds 2^53 + 1 down to 2^53
  if (zeroOk && size === 0n) return 0;
  return size >= 1024n && size <= 2n ** 53n ? Number(size) : null;
}

/** What a remote SDP says about the peer's receiving side (docs/protocol.md §3).
 * Never throws: malformed attributes and fields are ignored (and listed in `ignored`). */
export function parseCapabilities(sdp) {
  const caps = { sctpMaxMessageSize: 65536, version: null, maxMessageSize: null, deflate: false, ignored: [] };
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("a=max-message-size:")) {
      const size = announcedSize(line.slice(19), true);
      if (size === null) caps.ignored.push(line.slice(0, 60));
      else caps.sctpMaxMessageSize = size;
    } else if (line.startsWith("a=x-mcp-webrtc:")) {
      const fields = line.slice(15).split(";");
      if (!DIGITS.test(fields[0].trim())) {
        caps.ignored.push(line.slice(0, 60));
        continue;
      }
      caps.version = Number(fields[0]);
      for (const field of fields.slice(1)) {
        const [key, value = ""] = field.split("=").map((s) => s.trim());
        if (key === "max-message-size") {
          caps.maxMessageSize = announcedSize(value);
          if (caps.maxMessageSize === null) caps.ignored.push(line.slice(0, 60));
        }
        if (key === "compression") caps.deflate = value.split(",").includes("deflate-raw");
      }
    }
  }
  caps.chunking = caps.version !== null && caps.version >= 1;
  return caps;
}

/** Our capability line, added after the t= line of the SDP we signal. This module does
 * not inflate, so it announces no compression. */
export function addCapability(sdp, maxMessageSize) {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(eol);
  const at = lines.findIndex((l) => l.startsWith("t="));
  if (at < 0) throw new MCPWebRTCError("SDP has no t= line", "bad-sdp");
  lines.splice(at + 1, 0, `a=x-mcp-webrtc:${FRAMING_VERSION};max-message-size=${maxMessageSize}`);
  return lines.join(eol);
}

// ------------------------------------------------------------------ identity (§8)

export const KEY_TYPE = "mcp-webrtc-ed25519";
const IDENTITY_CONTEXT = "mcp-webrtc-identity-v1";
const CAPABILITY_PREFIX = "a=x-mcp-webrtc:";
const toBase64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const fromBase64 = (text, size, what) => {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new MCPWebRTCError(`the peer's ${what} is not base64`, "peer-identity");
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (bytes.length !== size) throw new MCPWebRTCError(`the peer's ${what} has ${bytes.length} bytes, not ${size}`, "peer-identity");
  return bytes;
};

/** The description's DTLS fingerprints as §8 signs them: "sha-256 AB:..", unique, sorted. */
export function sdpFingerprints(sdp) {
  const found = new Set();
  for (const raw of sdp.split(/\r?\n/)) {
    const match = /^a=fingerprint:\s*(\S+)\s+([0-9A-Fa-f:]+)\s*$/.exec(raw.trim());
    if (match) found.add(`${match[1].toLowerCase()} ${match[2].toUpperCase()}`);
  }
  return [...found].sort();
}

/** The bytes a side signs (§8). */
export function identityMessage(kind, capability, own, offered, keyBase64) {
  return encoder.encode([IDENTITY_CONTEXT, kind, capability, own.join(","), offered.join(","), keyBase64].join("\n"));
}

/** A new identity: `{ privateKey, publicKey (32 bytes), line }` (WebCrypto Ed25519). */
export async function generateIdentity() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  return identityOf(pair.privateKey, await crypto.subtle.exportKey("raw", pair.publicKey));
}

/** The identity whose private key is the 32-byte `seed` (RFC 8032). */
export async function identityFromSeed(seed) {
  const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...seed]);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const raw = Uint8Array.from(atob(jwk.x.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  return identityOf(privateKey, raw);
}

function identityOf(privateKey, raw) {
  const publicKey = new Uint8Array(raw);
  return { privateKey, publicKey, line: `${KEY_TYPE} ${toBase64(publicKey)}` };
}

/** `SHA256:<unpadded base64>` of a public key line's key, as the Python side shows it. */
export async function keyFingerprint(line) {
  const key = fromBase64(line.trim().split(/\s+/)[1] ?? "", 32, "key");
  return `SHA256:${toBase64(await crypto.subtle.digest("SHA-256", key)).replace(/=+$/, "")}`;
}

function capabilityIndex(lines) {
  return lines.findIndex((l) => l.trim().startsWith(CAPABILITY_PREFIX));
}

/** `sdp` (with its capability line) signed by `identity`; `offerSdp`: for an answer. */
export async function signDescription(identity, kind, sdp, offerSdp = null) {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(eol);
  const at = capabilityIndex(lines);
  if (at < 0) throw new MCPWebRTCError("the description has no capability line to sign", "bad-sdp");
  const own = sdpFingerprints(sdp);
  const offered = kind === "answer" && offerSdp ? sdpFingerprints(offerSdp) : [];
  const key = toBase64(identity.publicKey);
  const message = identityMessage(kind, lines[at].trim().slice(CAPABILITY_PREFIX.length), own, offered, key);
  const signature = toBase64(await crypto.subtle.sign("Ed25519", identity.privateKey, message));
  lines[at] = `${lines[at]};identity=${key};signature=${signature}`;
  return lines.join(eol);
}

/** The public key line that signed `sdp`, or null when it carries no identity. Throws
 * an MCPWebRTCError (code "peer-identity") when the signature does not verify. */
export async function verifyDescription(kind, sdp, offerSdp = null) {
  const lines = sdp.split(/\r?\n/);
  const at = capabilityIndex(lines);
  if (at < 0) return null;
  const fields = lines[at].trim().slice(CAPABILITY_PREFIX.length).split(";");
  const values = {};
  for (const field of fields.slice(1)) {
    const cut = field.indexOf("=");
    if (cut > 0) values[field.slice(0, cut)] = field.slice(cut + 1);
  }
  if (!("identity" in values)) return null;
  const signed = fields.filter((f) => !f.startsWith("identity=") && !f.startsWith("signature=")).join(";");
  const key = fromBase64(values.identity, 32, "identity");
  const signature = fromBase64(values.signature ?? "", 64, "signature");
  const own = sdpFingerprints(sdp);
  const offered = kind === "answer" && offerSdp ? sdpFingerprints(offerSdp) : [];
  const publicKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
  const message = identityMessage(kind, signed, own, offered, values.identity);
  if (!own.length || !(await crypto.subtle.verify("Ed25519", publicKey, signature, message))) {
    throw new MCPWebRTCError(`the peer's ${kind} signature does not match its DTLS fingerprints: altered or forged on the way`, "peer-identity");
  }
  return `${KEY_TYPE} ${values.identity}`;
}

/** Best effort: the top-level id of a request from the first bytes of its JSON
 * (docs/protocol.md §5): members are read one by one up to the first nested object or
 * array, so an id or method inside it, inside a key or inside a string is never taken. */
export function sniffRequestId(head) {
  const text = typeof head === "string" ? head : decoder.decode(head);
  const space = /[ \t\n\r]*/y;
  const skip = (at) => {
    space.lastIndex = at;
    space.exec(text);
    return space.lastIndex;
  };
  const stringEnd = (at) => { // index after the string starting at `at` (a quote), or -1
    for (let i = at + 1; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return -1;
  };
  const scalar = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;
  let pos = skip(0);
  if (text[pos] !== "{") return null;
  pos += 1;
  let isRequest = false;
  let found;
  for (;;) {
    pos = skip(pos);
    if (text[pos] !== '"') break;
    const keyEnd = stringEnd(pos);
    if (keyEnd < 0) break;
    const key = JSON.parse(text.slice(pos, keyEnd));
    pos = skip(keyEnd);
    if (text[pos] !== ":") break;
    pos = skip(pos + 1);
    if (pos >= text.length || text[pos] === "{" || text[pos] === "[") break;
    let valueEnd;
    if (text[pos] === '"') valueEnd = stringEnd(pos);
    else {
      scalar.lastIndex = pos;
      valueEnd = scalar.exec(text) ? scalar.lastIndex : -1;
    }
    if (valueEnd < 0) break; // truncated
    const token = text.slice(pos, valueEnd);
    pos = skip(valueEnd);
    if (text[pos] !== "," && text[pos] !== "}") break; // cut short ("1" of "1.5"), or not JSON
    const value = JSON.parse(token);
    if (key === "method") isRequest = typeof value === "string";
    else if (key === "id") found = /^-?[0-9]+$/.test(token) || typeof value === "string" ? value : undefined;
    if (text[pos] === "}") break;
    pos += 1;
  }
  if (!isRequest) return null;
  if (typeof found === "string") return found;
  if (Number.isSafeInteger(found)) return found;
  return null;
}

function errorResponse(id, code, message, data) {
  const error = { code, message };
  if (data !== undefined) error.data = data;
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

// ---------------------------------------------------------------- rendezvous signaling

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

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    return null;
  }
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

// ------------------------------------------------- the seed's signaling (mcp-webrtc 0.1.0)

const notImplemented = (name) => new MCPWebRTCError(`${name}() is not implemented by this signaling`, "config");

/** A signaling channel in the seed's shape: subclass it to carry signal objects over any
 * channel you already have (an A2A connection, a chat, a queue) and pass an instance as
 * `signaling` to a transport. Each method is abstract. */
export class BaseSignaling {
  constructor() {
    if (new.target === BaseSignaling) throw new TypeError("BaseSignaling is abstract: extend it");
  }

  /** Opens the channel. @returns {Promise<void>} */
  async connect() { throw notImplemented("connect"); }

  /** Closes the channel; receive() ends. @returns {Promise<void>} */
  async close() { throw notImplemented("close"); }

  /** Sends one signal object to the peer. @param {unknown} data @returns {Promise<void>} */
  async send(data) { throw notImplemented("send"); }

  /** The peer's signal objects, in order, until the channel closes.
   * @returns {AsyncGenerator<unknown>} */
  async *receive() { throw notImplemented("receive"); }
}

/** Receivers waiting for something to be pushed to a MemorySignaling buffer. */
const memoryWaiters = new WeakMap();

function wakeReaders(buffer) {
  const waiters = memoryWaiters.get(buffer) ?? [];
  memoryWaiters.delete(buffer);
  for (const wake of waiters) wake();
}

/** Signaling between two transports in one process (tests, examples): what one end sends
 * is pushed to `sendBuffer`, the other end's receive buffer. */
export class MemorySignaling extends BaseSignaling {
  /** @param {unknown[]} sendBuffer @param {unknown[]} receiveBuffer */
  constructor(sendBuffer, receiveBuffer) {
    super();
    this._sendBuffer = sendBuffer;
    this._receiveBuffer = receiveBuffer;
    this._closed = false;
  }

  async connect() {}

  async close() {
    this._closed = true;
    wakeReaders(this._receiveBuffer);
  }

  async send(data) {
    if (this._closed) throw new MCPWebRTCError("the signaling is closed", "signaling-closed");
    this._sendBuffer.push(data);
    wakeReaders(this._sendBuffer);
  }

  async *receive() {
    const buffer = this._receiveBuffer;
    while (!this._closed || buffer.length > 0) {
      if (buffer.length > 0) {
        yield buffer.shift();
        continue;
      }
      await new Promise((resolve) => {
        if (!memoryWaiters.has(buffer)) memoryWaiters.set(buffer, []);
        memoryWaiters.get(buffer).push(resolve);
      });
    }
  }

  /** Two ends joined back to back. @returns {Promise<[MemorySignaling, MemorySignaling]>} */
  static async createMemorySignalingPair() {
    const fromFirst = [];
    const fromSecond = [];
    return [new MemorySignaling(fromFirst, fromSecond), new MemorySignaling(fromSecond, fromFirst)];
  }
}

/** Calls `action` (which may throw or return a rejecting promise) and only logs a failure:
 * signaling that is already gone must not end the caller, nor leave an unhandled rejection. */
function quietly(action, what) {
  try {
    Promise.resolve(action()).catch((error) => debug(what, "failed:", error?.message ?? error));
  } catch (error) {
    debug(what, "failed:", error?.message ?? error);
  }
}

/** The transport's callback interface (onsignal, onclose) over a signaling in the seed's
 * shape (connect, send, receive, close): a BaseSignaling or any object with receive(). */
class ReceivingSignaling {
  constructor(inner) {
    this.inner = inner;
    this.onsignal = null;
    this.onclose = null;
  }

  get iceServers() {
    return this.inner.iceServers ?? [];
  }

  async connect() {
    await this.inner.connect?.();
    this._pump();
  }

  async _pump() {
    try {
      for await (const signal of this.inner.receive()) {
        // simple-peer takes signals as objects or as their JSON text; so do we
        this.onsignal?.(typeof signal === "string" ? parseJson(signal) : signal);
      }
      this.onclose?.(null);
    } catch (error) {
      this.onclose?.(new MCPWebRTCError(`the signaling failed: ${error?.message ?? error}`, "signaling-closed"));
    }
  }

  send(signal) {
    quietly(() => this.inner.send(signal), "signaling send");
  }

  close() {
    quietly(() => this.inner.close?.(), "signaling close");
  }
}

/** `signaling` as the transport drives it: ours as it is, one in the seed's shape adapted. */
function adaptSignaling(signaling) {
  if (!signaling || typeof signaling !== "object") throw new MCPWebRTCError("a transport needs a signaling", "config");
  return typeof signaling.receive === "function" ? new ReceivingSignaling(signaling) : signaling;
}

// ---------------------------------------------------------------- the transport

function randomLabel() {
  const bytes = new Uint8Array(20);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Our options from the seed's `peerOptions` (simple-peer's): `wrtc`, `config` (an
 * RTCConfiguration whose iceServers are used as given: none when it has none, never
 * simple-peer's public STUN default) and `channelName`. The others (trickle, offerOptions,
 * sdpTransform, streams...) do not apply here and are ignored. */
function fromPeerOptions({ wrtc, config, channelName } = {}) {
  const options = {};
  if (wrtc) options.wrtc = wrtc;
  if (config) {
    const { iceServers, ...rest } = config;
    options.rtcConfiguration = rest;
    if (iceServers) options.iceServers = iceServers;
  }
  if (channelName) options.channelLabel = channelName;
  return options;
}

/** How often a sender looks at bufferedAmount again where the data channel has no
 * bufferedamountlow event (@roamhq/wrtc). */
const DRAIN_POLL_MS = 2;

/** MCP over one WebRTC data channel; implements the MCP TypeScript SDK's Transport.
 *  - `signaling`: a RendezvousSignaling, a RendezvousHost session, or any object with
 *    connect/send/close and onsignal/onclose; or one in the seed's shape (a BaseSignaling:
 *    connect/send/receive/close).
 *  - `role` "client" answers by default, "server" offers (as in the Python package);
 *    `initiator` (or `peerOptions.initiator`, as in the seed) says so directly.
 *  - `options`: see DEFAULTS; `peerOptions`: the seed's simple-peer options (fromPeerOptions).
 *  - `awaitChannel`: start() resolves once the data channel is open (default); false: once
 *    the offer is out or awaited, and send() waits for the channel (the seed's way, which
 *    lets one process start its server before its client). */
export class WebRTCTransport {
  constructor({ signaling, role = "client", initiator, peerOptions, options = {}, awaitChannel = true }) {
    const peer = peerOptions ?? {};
    this.signaling = adaptSignaling(signaling);
    this.initiator = initiator ?? peer.initiator ?? role === "server";
    this.options = { ...DEFAULTS, ...fromPeerOptions(peer), ...options };
    this.awaitChannel = awaitChannel;
    const chunk = this.options.chunkSize;
    if (!(Number.isInteger(chunk) && chunk >= 1024 && chunk <= 256 * 1024 - 64)) {
      throw new MCPWebRTCError("chunkSize must be an integer between 1024 and 262080", "config");
    }
    this.onmessage = undefined;
    this.onclose = undefined;
    this.onerror = undefined;
    this.pc = null;
    this.channel = null;
    this.remote = null; // what the peer's description says (parseCapabilities)
    this._remoteApplied = false;
    this._pending = [];
    this._decoder = new FrameDecoder(this.options.maxMessageSize);
    this._nextId = 0;
    this._closed = false;
    this._drainWaiters = [];
    this._early = []; // signals that came before the peer connection existed
    this._opened = null; // settles when the data channel opens, or connecting fails
    this._wasOpen = false;
  }

  /** Connects: resolves once the data channel is open, or (awaitChannel false) once the
   * offer is out or awaited. Rejects with an MCPWebRTCError naming the cause. */
  async start() {
    let setUp;
    const started = new Promise((resolve) => {
      setUp = resolve;
    });
    const connected = this._connect(setUp);
    connected.catch(() => {}); // observed by start(), else by onerror and waiting sends
    await (this.awaitChannel ? connected : Promise.race([started, connected]));
  }

  async _connect(setUp) {
    const signaling = this.signaling;
    let settle;
    const opened = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    this._opened = opened;
    // observed below and by send(); never an unhandled rejection
    opened.then(() => { this._wasOpen = true; }, () => {});
    const fail = (error) => settle.reject(error);
    let handedBack = false;
    this._failConnect = fail;
    const timer = setTimeout(
      () => fail(new MCPWebRTCError(`no connection after ${this.options.connectTimeout} ms (${this._stage()})`, "connect-timeout")),
      this.options.connectTimeout,
    );
    signaling.onsignal = (signal) => this._onSignal(signal).catch((error) => this._report(error));
    signaling.onclose = (error) => {
      if (!this.channel || this.channel.readyState !== "open") {
        fail(error || new MCPWebRTCError("signaling closed before the connection was up", "signaling-closed"));
      }
    };
    try {
      // the connect timeout also bounds a rendezvous that accepts but never answers
      await Promise.race([signaling.connect?.(), opened]);
      const iceServers = [...this.options.iceServers, ...(signaling.iceServers || [])];
      const PeerConnection = this.options.wrtc?.RTCPeerConnection ?? globalThis.RTCPeerConnection;
      if (!PeerConnection) {
        throw new MCPWebRTCError("this runtime has no RTCPeerConnection: pass one as the `wrtc` option (in Node, @roamhq/wrtc)", "config");
      }
      const pc = new PeerConnection({ ...this.options.rtcConfiguration, iceServers });
      this.pc = pc;
      pc.onicecandidate = (event) => {
        if (event.candidate) signaling.send({ type: "candidate", candidate: event.candidate.toJSON() });
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") {
          fail(new MCPWebRTCError("ICE/DTLS connection failed", "ice-failed"));
          this._finish(new MCPWebRTCError("connection failed", "ice-failed"));
        }
      };
      const attach = (channel) => {
        this.channel = channel;
        this._lowEvents = "onbufferedamountlow" in channel; // before we set it
        channel.binaryType = "arraybuffer";
        channel.bufferedAmountLowThreshold = this.options.lowWatermark;
        channel.onbufferedamountlow = () => this._wakeWriters();
        channel.onmessage = (event) => this._onData(event.data);
        channel.onclose = () => this._finish(null);
        channel.onopen = () => { debug("channel open", channel.label, channel.id); settle.resolve(); };
        if (channel.readyState === "open") settle.resolve();
      };
      if (this.initiator) {
        attach(pc.createDataChannel(this.options.channelLabel || randomLabel(), { ordered: true }));
        await pc.setLocalDescription(await pc.createOffer());
        this._localSdp = await this._sign("offer", addCapability(pc.localDescription.sdp, this.options.maxMessageSize));
        signaling.send({ type: "offer", sdp: this._localSdp });
      } else {
        pc.ondatachannel = (event) => {
          // two of these in one session would explain a page stuck after "sending initialize"
          debug("data channel from the peer", event.channel.label, event.channel.id, event.channel.readyState);
          attach(event.channel);
        };
      }
      for (const signal of this._early.splice(0)) this._onSignal(signal).catch((error) => this._report(error));
      handedBack = true;
      setUp();
      await opened;
    } catch (error) {
      clearTimeout(timer);
      if (handedBack && !this._closed) this._report(error); // start() has returned: say why here
      await this.close();
      throw error;
    }
    clearTimeout(timer);
  }

  _sign(kind, sdp, offerSdp = null) {
    return this.options.identity ? signDescription(this.options.identity, kind, sdp, offerSdp) : sdp;
  }

  _checkExpected(key) {
    const expected = (this.options.expectPeerKeys || []).map((line) => line.trim().split(/\s+/)[1]);
    if (!expected.length) return;
    if (!key) throw new MCPWebRTCError("the peer proved no identity; a key was expected", "peer-identity");
    if (!expected.includes(key.split(" ")[1])) {
      throw new MCPWebRTCError(`the peer's key ${key} is not the expected one (another peer, or a man in the middle)`, "peer-identity");
    }
  }

  _stage() {
    if (!this.pc) return "signaling did not connect";
    if (!this.remote) return "no offer or answer arrived";
    return `ICE ${this.pc.iceConnectionState}, connection ${this.pc.connectionState}`;
  }

  async _onSignal(signal) {
    const pc = this.pc;
    debug("signal", signal?.type ?? "candidate", pc ? "" : "(before the peer connection: kept)");
    if (!signal || typeof signal !== "object") return;
    if (!pc) {
      this._early.push(signal); // replayed once the peer connection exists
      return;
    }
    if (signal.type === "offer" || signal.type === "answer") {
      const expected = this.initiator ? "answer" : "offer";
      if (signal.type !== expected || this.remote || typeof signal.sdp !== "string") {
        console.warn("mcp-webrtc: ignoring unexpected", signal.type);
        return;
      }
      try { // an identity that does not verify: the description is never applied
        this.peerKey = await verifyDescription(signal.type, signal.sdp, this.initiator ? this._localSdp : null);
        this._checkExpected(this.peerKey);
      } catch (error) {
        this.signaling.send({ type: "bye", reason: `connect failed: ${error.message}` });
        this._failConnect?.(error);
        this._finish(error);
        return;
      }
      // known before the channel can open: @roamhq/wrtc may open it (and deliver the peer's
      // first request) before setRemoteDescription's promise resolves
      this.remote = parseCapabilities(signal.sdp);
      await pc.setRemoteDescription({ type: signal.type, sdp: signal.sdp });
      this._remoteApplied = true;
      for (const candidate of this._pending.splice(0)) await this._addCandidate(candidate);
      if (!this.initiator) {
        await pc.setLocalDescription(await pc.createAnswer());
        const answer = addCapability(pc.localDescription.sdp, this.options.maxMessageSize);
        this.signaling.send({ type: "answer", sdp: await this._sign("answer", answer, signal.sdp) });
      }
    } else if (signal.type === "candidate" || (!signal.type && signal.candidate)) {
      const candidate = typeof signal.candidate === "string" ? { candidate: signal.candidate, sdpMid: signal.sdpMid, sdpMLineIndex: signal.sdpMLineIndex } : signal.candidate;
      if (!candidate || !candidate.candidate) return;
      if (this._remoteApplied) await this._addCandidate(candidate);
      else this._pending.push(candidate);
    } else if (signal.type === "bye") {
      this._failConnect?.(new MCPWebRTCError("the peer left before the connection was up", "peer-left"));
      this._finish(null);
    } else {
      console.warn("mcp-webrtc: ignoring unknown signal", signal);
    }
  }

  async _addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      console.warn("mcp-webrtc: ignoring unusable candidate", candidate, error);
    }
  }

  _onData(data) {
    debug("received", typeof data === "string" ? data.length : data.byteLength, "bytes");
    let payload;
    try {
      payload = this._decoder.feed(data);
    } catch (error) {
      if (error instanceof OversizeMessage) {
        const id = sniffRequestId(error.head);
        this._sendRaw(errorResponse(id, MESSAGE_TOO_LARGE, `Message too large: ${error.size} bytes, the limit is ${error.limit} bytes`, { size: error.size, limit: error.limit }));
      } else {
        this._sendRaw(errorResponse(null, PARSE_ERROR, `Parse error: ${error.message}`));
      }
      this._report(error);
      return;
    }
    if (payload === null) return;
    let message;
    try {
      message = JSON.parse(typeof payload === "string" ? payload : decoder.decode(payload));
    } catch (error) {
      this._sendRaw(errorResponse(null, PARSE_ERROR, "Parse error"));
      this._report(new MCPWebRTCError("peer sent invalid JSON", "parse-error"));
      return;
    }
    this.onmessage?.(message);
  }

  _sendRaw(text) {
    if (this.channel?.readyState === "open") this.channel.send(text);
  }

  _report(error) {
    if (this.onerror) this.onerror(error);
    else console.warn("mcp-webrtc:", error);
  }

  _wakeWriters() {
    for (const wake of this._drainWaiters.splice(0)) wake();
  }

  async _writable() {
    const channel = this.channel;
    while (channel.readyState === "open" && channel.bufferedAmount > this.options.highWatermark) {
      await new Promise((resolve) => {
        this._drainWaiters.push(resolve);
        if (!this._lowEvents) setTimeout(() => this._wakeWriters(), DRAIN_POLL_MS);
      });
    }
    if (channel.readyState !== "open") throw new MCPWebRTCError("the data channel is closed", "peer-gone");
  }

  /** Send one JSON-RPC message (an object). Rejects with code "too-large" or "peer-gone". */
  async send(message) {
    debug("sending", message.method ?? `answer ${message.id}`);
    // start() may have returned before the channel opened (awaitChannel false): wait for it
    if (this._opened && !this._closed && this.channel?.readyState !== "open") await this._opened;
    if (!this.channel || this.channel.readyState !== "open") throw new MCPWebRTCError("not connected", "peer-gone");
    const text = JSON.stringify(message);
    const data = encoder.encode(text);
    const size = data.length;
    if (size > this.options.maxMessageSize) {
      throw new MCPWebRTCError(`message of ${size} bytes exceeds this side's limit of ${this.options.maxMessageSize} bytes`, "too-large", { size, limit: this.options.maxMessageSize });
    }
    const remote = this.remote;
    const sctpLimit = remote.sctpMaxMessageSize || 256 * 1024;
    if (!remote.chunking) {
      if (remote.sctpMaxMessageSize && size > remote.sctpMaxMessageSize) {
        throw new MCPWebRTCError(`message of ${size} bytes exceeds the peer's limit of ${remote.sctpMaxMessageSize} bytes (it does not reassemble chunked messages)`, "too-large", { size, limit: remote.sctpMaxMessageSize });
      }
      await this._writable();
      this.channel.send(text);
      return;
    }
    if (remote.maxMessageSize && size > remote.maxMessageSize) {
      throw new MCPWebRTCError(`message of ${size} bytes exceeds the peer's limit of ${remote.maxMessageSize} bytes`, "too-large", { size, limit: remote.maxMessageSize });
    }
    const chunk = Math.min(this.options.chunkSize, sctpLimit - FIRST_HEADER);
    await this._writable();
    if (size <= chunk) {
      this.channel.send(text);
      return;
    }
    this._nextId = (this._nextId + 1) >>> 0;
    const id = this._nextId;
    let sent = false;
    try {
      for (let offset = 0; offset < size; offset += chunk) {
        if (offset > 0) await this._writable();
        const piece = data.subarray(offset, offset + chunk);
        this.channel.send(offset === 0 ? firstFrame(id, size, piece) : nextFrame(id, piece));
        sent = true;
      }
    } catch (error) {
      if (sent) this._sendRaw(abortFrame(id));
      throw error;
    }
  }

  /** Selected candidate pair types and addresses, protocol, RTT (seconds) and byte counts (from getStats). */
  async connectionInfo() {
    const info = { localCandidateType: null, remoteCandidateType: null, localAddress: null, remoteAddress: null, protocol: null, rtt: null, bytesSent: 0, bytesReceived: 0, state: this.pc?.connectionState ?? "new" };
    if (!this.pc) return info;
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((report) => {
      if (report.type === "transport" && report.selectedCandidatePairId) pair = stats.get(report.selectedCandidatePairId);
    });
    if (!pair) {
      stats.forEach((report) => {
        if (report.type === "candidate-pair" && report.state === "succeeded" && (report.nominated || !pair)) pair = report;
      });
    }
    if (pair) {
      const local = stats.get(pair.localCandidateId);
      const remote = stats.get(pair.remoteCandidateId);
      info.localCandidateType = local?.candidateType ?? null;
      info.remoteCandidateType = remote?.candidateType ?? null;
      const where = (c) => { const ip = c.address ?? c.ip; return `${ip?.includes(":") ? `[${ip}]` : ip}:${c.port}`; };
      info.localAddress = local ? where(local) : null;
      info.remoteAddress = remote ? where(remote) : null;
      info.protocol = local?.protocol ?? null;
      info.rtt = pair.currentRoundTripTime ?? null;
      info.bytesSent = pair.bytesSent ?? 0;
      info.bytesReceived = pair.bytesReceived ?? 0;
    }
    return info;
  }

  _finish(error) {
    if (this._closed) return;
    this._closed = true;
    // sends still waiting for the channel fail with the cause (a no-op once it was open)
    this._failConnect?.(error ?? new MCPWebRTCError("the connection closed before it was up", "peer-gone"));
    this._wakeWriters();
    // the peer left (or the path died): release the connection and the signaling too
    this.channel?.close();
    this.pc?.close();
    this.signaling.close?.();
    if (error) this._report(error);
    if (this.awaitChannel || this._wasOpen) this.onclose?.();
    // The SDK fails its pending requests with "Connection closed" in onclose: a send that
    // waited for a channel that never opened first rejects with the cause, then onclose.
    else setTimeout(() => this.onclose?.(), 0);
  }

  async close() {
    if (!this._closed) {
      try {
        this.signaling.send({ type: "bye" });
      } catch (error) {
        // the signaling may be gone already; leaving anyway
      }
    }
    this._finish(null);
  }
}

// ----------------------------------------- the seed's transports (mcp-webrtc 0.1.0 on npm)

/**
 * @typedef {object} WebRTCTransportOptions the seed's constructor argument
 * @property {BaseSignaling | object} signaling a BaseSignaling, or one of ours
 * @property {object} [peerOptions] simple-peer's options: `wrtc`, `config` and
 *   `channelName` are honoured (see fromPeerOptions), `initiator` is set by the class
 * @property {object} [options] this module's options (DEFAULTS), e.g. `maxMessageSize`,
 *   `connectTimeout`, `identity`
 */

/** The MCP client's end, as in the seed: answers the server's offer. start() returns before
 * the data channel is open; send() waits for it. */
export class WebRTCClientTransport extends WebRTCTransport {
  /** @param {WebRTCTransportOptions} options */
  constructor({ signaling, peerOptions, options }) {
    super({ signaling, peerOptions: { ...peerOptions, initiator: false }, options, awaitChannel: false });
  }
}

/** The MCP server's end, as in the seed: makes the offer and opens the data channel.
 * start() returns once the offer is out; send() waits for the channel. */
export class WebRTCServerTransport extends WebRTCTransport {
  /** @param {WebRTCTransportOptions} options */
  constructor({ signaling, peerOptions, options }) {
    super({ signaling, peerOptions: { ...peerOptions, initiator: true }, options, awaitChannel: false });
  }
}

// ---------------------------------------------------------------- a tiny MCP layer

export const PROTOCOL_VERSION = "2025-06-18";
/** MCP log levels, least severe first (the values of logging/setLevel). */
export const LOG_LEVELS = Object.freeze(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]);

/** UTF-8 bytes of a message's JSON text (as this side serializes it). */
const jsonBytes = (message) => encoder.encode(JSON.stringify(message)).length;

/** A minimal MCP client over any Transport (for pages without the TypeScript SDK).
 *
 * - `onnotification(message)`: every notification from the server (log messages,
 *   progress, list changes...); `onclose()`: the connection ended.
 * - `history`: a record per request, the last `historyLimit` of them: `{id, method,
 *   target (the tool, prompt, resource or log level it names), started (epoch ms),
 *   duration (ms), requestBytes, responseBytes, outcome ("pending", "ok" or "error"),
 *   error}`; sizes are UTF-8 bytes of the JSON text. `onhistory(record)` when one is
 *   sent and when it ends.
 * - The server's `ping` is answered; its other requests get "method not found". */
export class McpClient {
  constructor(transport, { name = "mcp-webrtc.js", version = VERSION, timeout = 60000, historyLimit = 1000 } = {}) {
    this.transport = transport;
    this.info = { name, version };
    this.timeout = timeout;
    this.historyLimit = historyLimit;
    this.nextId = 1;
    this.pending = new Map();
    this.history = [];
    this.serverInfo = null;
    this.serverCapabilities = {};
    this.onclose = null;
    this.onnotification = null;
    this.onhistory = null;
    this._statsWatchers = new Set();
  }

  async connect() {
    this.transport.onmessage = (message) => this._onMessage(message);
    this.transport.onclose = () => {
      for (const stop of [...this._statsWatchers]) stop();
      for (const id of [...this.pending.keys()]) this._settle(id, { error: new MCPWebRTCError("connection closed", "peer-gone") });
      this.onclose?.();
    };
    await this.transport.start();
    const result = await this.request("initialize", { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: this.info });
    this.serverInfo = result.serverInfo;
    this.serverCapabilities = result.capabilities ?? {};
    await this.transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    return result;
  }

  _onMessage(message) {
    if (message.method === undefined) { // a response
      if (!this.pending.has(message.id)) return;
      const bytes = jsonBytes(message);
      const { error } = message;
      this._settle(message.id, error ? { error: new MCPWebRTCError(error.message, error.code, error.data), bytes } : { result: message.result, bytes });
    } else if (message.id === undefined) { // a notification
      if (message.method === "notifications/progress") this.pending.get(message.params?.progressToken)?.onprogress?.(message.params);
      this.onnotification?.(message);
    } else { // a request from the server
      const answer = message.method === "ping" ? { result: {} } : { error: { code: -32601, message: `method not found: ${message.method}` } };
      this.transport.send({ jsonrpc: "2.0", id: message.id, ...answer }).catch((error) => console.warn("mcp-webrtc:", error));
    }
  }

  /** Ends request `id`: its record, then its promise. */
  _settle(id, { result, error = null, bytes = null }) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    Object.assign(entry.record, { duration: performance.now() - entry.t0, responseBytes: bytes, outcome: error ? "error" : "ok", error: error?.message ?? null });
    this.onhistory?.(entry.record);
    if (error) entry.reject(error);
    else entry.resolve(result);
  }

  /** Resolves with the result; rejects with an MCPWebRTCError (the JSON-RPC error's code,
   * or "timeout", "peer-gone"). `onprogress(params)`: the request carries a progress token
   * and each notifications/progress for it is passed on. */
  request(method, params = {}, { onprogress = null, timeout = this.timeout } = {}) {
    const id = this.nextId++;
    if (onprogress) params = { ...params, _meta: { ...params._meta, progressToken: id } };
    const message = { jsonrpc: "2.0", id, method, params };
    const record = { id, method, target: params.name ?? params.uri ?? params.level ?? null, started: Date.now(), duration: null, requestBytes: jsonBytes(message), responseBytes: null, outcome: "pending", error: null };
    this.history.push(record);
    if (this.history.length > this.historyLimit) this.history.shift();
    this.onhistory?.(record);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this._settle(id, { error: new MCPWebRTCError(`${method} timed out`, "timeout") }), timeout);
      this.pending.set(id, { resolve, reject, timer, record, onprogress, t0: performance.now() });
      this.transport.send(message).catch((error) => this._settle(id, { error }));
    });
  }

  listTools() { return this.request("tools/list"); }
  /** `options`: `{ onprogress, timeout }` as for request(). */
  callTool(name, args = {}, options = {}) { return this.request("tools/call", { name, arguments: args }, options); }
  listResources() { return this.request("resources/list"); }
  readResource(uri) { return this.request("resources/read", { uri }); }
  subscribeResource(uri) { return this.request("resources/subscribe", { uri }); }
  unsubscribeResource(uri) { return this.request("resources/unsubscribe", { uri }); }
  listPrompts() { return this.request("prompts/list"); }
  getPrompt(name, args = {}) { return this.request("prompts/get", { name, arguments: args }); }
  /** The server sends log messages (notifications/message) at `level` (LOG_LEVELS) and above. */
  setLoggingLevel(level) { return this.request("logging/setLevel", { level }); }

  /** The path now: candidate pair, protocol, RTT, bytes (transport.connectionInfo()), or
   * null with a transport that has no such method. */
  async stats() {
    return this.transport.connectionInfo ? this.transport.connectionInfo() : null;
  }

  /** `onstats(stats())` now and every `interval` ms, until the returned function is
   * called or the connection closes. */
  watchStats(onstats, interval = 1000) {
    const tick = () => this.stats().then((stats) => { if (this._statsWatchers.has(stop)) onstats(stats); }, () => {});
    const timer = setInterval(tick, interval);
    const stop = () => { clearInterval(timer); this._statsWatchers.delete(stop); };
    this._statsWatchers.add(stop);
    tick();
    return stop;
  }

  close() { return this.transport.close(); }
}

/** A minimal MCP server exposing `tools` ({name: {description, inputSchema, handler}}),
 *  so a page can offer tools to a remote (e.g. Python) MCP client. */
export class McpToolServer {
  constructor(transport, { name = "browser", version = VERSION, tools = {} } = {}) {
    Object.assign(this, { transport, name, version, tools });
  }

  async start() {
    this.transport.onmessage = (message) => this._handle(message).catch((error) => console.warn(error));
    await this.transport.start();
  }

  async _handle(message) {
    if (message.method === undefined || message.id === undefined) return; // responses, notifications
    const reply = (result) => this.transport.send({ jsonrpc: "2.0", id: message.id, result });
    const fail = (code, text) => this.transport.send({ jsonrpc: "2.0", id: message.id, error: { code, message: text } });
    switch (message.method) {
      case "initialize":
        return reply({ protocolVersion: message.params?.protocolVersion ?? PROTOCOL_VERSION, capabilities: { tools: {} }, serverInfo: { name: this.name, version: this.version } });
      case "ping":
        return reply({});
      case "tools/list":
        return reply({ tools: Object.entries(this.tools).map(([name, t]) => ({ name, description: t.description ?? "", inputSchema: t.inputSchema ?? { type: "object" } })) });
      case "tools/call": {
        const tool = this.tools[message.params?.name];
        if (!tool) return fail(-32602, `unknown tool ${message.params?.name}`);
        try {
          const value = await tool.handler(message.params.arguments ?? {});
          const content = typeof value === "string" ? [{ type: "text", text: value }] : value.content ?? [{ type: "text", text: JSON.stringify(value) }];
          return reply({ content, isError: false });
        } catch (error) {
          return reply({ content: [{ type: "text", text: String(error?.message ?? error) }], isError: true });
        }
      }
      default:
        return fail(-32601, `method not found: ${message.method}`);
    }
  }
}

/** Connect to the MCP server behind `room` at the rendezvous `url`; returns a connected McpClient. */
export async function connectClient(url, room, token, options = {}) {
  const transport = new WebRTCTransport({ signaling: new RendezvousSignaling(url, room, token, options), role: "client", options });
  const client = new McpClient(transport);
  await client.connect();
  return client;
}

/** Host `tools` in this page under `room`: every client that joins gets its own session. */
export async function hostTools(url, room, token, clientToken, tools, options = {}) {
  const host = new RendezvousHost(url, room, token, clientToken, options);
  host.sessions = [];
  host.onsession = (signaling) => {
    const transport = new WebRTCTransport({ signaling, role: "server", options });
    const server = new McpToolServer(transport, { name: options.name ?? "browser", tools });
    host.sessions.push(server);
    const forget = () => {
      const at = host.sessions.indexOf(server);
      if (at >= 0) host.sessions.splice(at, 1);
    };
    server.start().then(() => {
      transport.onclose = forget;
      if (transport._closed) forget();
    }, (error) => {
      forget();
      console.warn("mcp-webrtc: session failed", error);
    });
  };
  await host.connect();
  return host;
}
