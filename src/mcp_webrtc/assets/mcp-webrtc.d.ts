// mcp-webrtc.d.ts: hand-written declarations of mcp-webrtc.js, the npm package's entry point
// (package.json "types"). The seed's names (mcp-webrtc 0.1.0: BaseSignaling, MemorySignaling,
// WebRTCTransport, WebRTCClientTransport, WebRTCServerTransport, WebRTCTransportOptions) keep
// its signatures; the transports implement the MCP TypeScript SDK's Transport. WebRTC types
// (RTCConfiguration, RTCPeerConnection...) are the DOM library's, as @roamhq/wrtc's are.
// tests/test_node_interop.py type-checks the seed's README example and tests/node/types.mts
// against this file.

import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import type {
  CallToolResult, EmptyResult, GetPromptResult, Implementation, InitializeResult, JSONRPCMessage,
  JSONRPCNotification, ListPromptsResult, ListResourcesResult, ListToolsResult, LoggingLevel,
  Progress, ReadResourceResult, ServerCapabilities,
} from "@modelcontextprotocol/sdk/types.js";

// ---------------------------------------------------------------- version, options, errors

/** This module's version: the Python package's. */
export declare const VERSION: string;

/** Where RTCPeerConnection comes from: an object holding one (Node: `@roamhq/wrtc`'s
 * default export). */
export interface WebRTCImplementation {
  RTCPeerConnection: new (...args: any[]) => unknown;
}

/** A private key and its public half (§8), from generateIdentity() or identityFromSeed(). */
export interface Identity {
  privateKey: CryptoKey;
  /** The 32 bytes of the Ed25519 public key. */
  publicKey: Uint8Array;
  /** `mcp-webrtc-ed25519 <base64>`: what the peer pins (expectPeerKeys). */
  line: string;
}

/** This module's options (DEFAULTS); sizes in bytes, times in milliseconds. */
export interface TransportOptions {
  /** ICE servers; those the rendezvous hands out are added. Default: none. */
  iceServers?: RTCIceServer[];
  /** Connecting fails with code "connect-timeout" after this long. Default 20000. */
  connectTimeout?: number;
  /** The largest message this side receives (announced to the peer) or sends. Default 128 MiB. */
  maxMessageSize?: number;
  /** Chunk frame payload size, 1024 to 262080. Default 64 KiB. */
  chunkSize?: number;
  /** Sends wait while the channel buffers more than this. Default 128 KiB. */
  highWatermark?: number;
  /** ...until it buffers no more than this. Default 32 KiB. */
  lowWatermark?: number;
  /** The data channel's label (the initiator's); null: a random one. */
  channelLabel?: string | null;
  /** Where RTCPeerConnection comes from; null: the runtime's own. */
  wrtc?: WebRTCImplementation | null;
  /** Further RTCConfiguration fields (iceTransportPolicy, certificates...). */
  rtcConfiguration?: RTCConfiguration | null;
  /** This side's identity: signs our descriptions (§8). */
  identity?: Identity | null;
  /** Public key lines of which the peer must prove one; empty: any peer. */
  expectPeerKeys?: string[];
}

/** Every option with its value. */
export type ResolvedOptions = Required<TransportOptions>;

export declare const DEFAULTS: Readonly<ResolvedOptions>;

/** Every error this module raises or reports. `code` names the cause: "too-large",
 * "peer-gone", "peer-left", "connect-timeout", "ice-failed", "signaling-closed",
 * "peer-identity", "config", "unreachable", "timeout", a rendezvous error code, a JSON-RPC
 * error code (McpClient)... */
export declare class MCPWebRTCError extends Error {
  constructor(message: string, code?: string | number, data?: unknown);
  code: string | number;
  data: unknown;
}

// ---------------------------------------------------------------- framing (§5), capabilities (§3)

export declare const FRAMING_VERSION: number;
export declare function firstFrame(id: number, size: number, payload: Uint8Array): Uint8Array;
export declare function nextFrame(id: number, payload: Uint8Array): Uint8Array;
export declare function abortFrame(id: number): Uint8Array;

export declare class FrameError extends MCPWebRTCError {
  constructor(message: string);
}

export declare class OversizeMessage extends MCPWebRTCError {
  constructor(size: number, limit: number, head: Uint8Array);
  size: number;
  limit: number;
  /** The message's first bytes (at most 4096), to read a request's id from. */
  head: Uint8Array;
}

/** Reassembles chunk frames. */
export declare class FrameDecoder {
  constructor(maxMessageSize: number, maxPartial?: number);
  maxMessageSize: number;
  maxPartial: number;
  readonly bufferedBytes: number;
  /** A complete payload, or null; throws FrameError or OversizeMessage. */
  feed(data: string | ArrayBuffer | Uint8Array): string | Uint8Array | null;
}

/** What a remote SDP says about the peer's receiving side. */
export interface Capabilities {
  sctpMaxMessageSize: number;
  version: number | null;
  maxMessageSize: number | null;
  deflate: boolean;
  /** Malformed attributes or fields, ignored. */
  ignored: string[];
  /** Whether the peer reassembles chunk frames. */
  chunking: boolean;
}

export declare function parseCapabilities(sdp: string): Capabilities;
export declare function addCapability(sdp: string, maxMessageSize: number): string;

// ---------------------------------------------------------------- identity (§8)

export type DescriptionKind = "offer" | "answer";

export declare const KEY_TYPE: "mcp-webrtc-ed25519";
export declare function sdpFingerprints(sdp: string): string[];
export declare function identityMessage(kind: DescriptionKind, capability: string, own: string[], offered: string[], keyBase64: string): Uint8Array;
export declare function generateIdentity(): Promise<Identity>;
export declare function identityFromSeed(seed: Iterable<number>): Promise<Identity>;
export declare function keyFingerprint(line: string): Promise<string>;
export declare function signDescription(identity: Identity, kind: DescriptionKind, sdp: string, offerSdp?: string | null): Promise<string>;
/** The public key line that signed `sdp`, or null; rejects (code "peer-identity") on a bad signature. */
export declare function verifyDescription(kind: DescriptionKind, sdp: string, offerSdp?: string | null): Promise<string | null>;

// ---------------------------------------------------------------- JSON-RPC

export declare const PARSE_ERROR: -32700;
export declare const INVALID_REQUEST: -32600;
export declare const MESSAGE_TOO_LARGE: -32050;
/** A request's id from the first bytes of its JSON text, or null. */
export declare function sniffRequestId(head: string | Uint8Array): string | number | null;

// ---------------------------------------------------------------- signaling

/** What the transport sends through a signaling. */
export type Signal =
  | { type: "offer" | "answer"; sdp: string }
  | { type: "candidate"; candidate: RTCIceCandidateInit }
  | { type: "bye"; reason?: string };

/** A signaling the transport drives through callbacks: RendezvousSignaling, a RendezvousHost
 * session, or your own. The transport sets `onsignal` and `onclose`. */
export interface CallbackSignaling {
  onsignal: ((signal: unknown) => void) | null;
  onclose: ((error: MCPWebRTCError | null) => void) | null;
  /** ICE servers it hands out, added to the transport's. */
  readonly iceServers?: RTCIceServer[];
  connect?(): Promise<void> | void;
  send(signal: Signal): void;
  close?(): void;
}

/** A signaling in the seed's shape, as BaseSignaling has it: the peer's signal objects (or
 * their JSON text) from receive(), until the channel closes. */
export interface SignalStream {
  connect?(): Promise<void> | void;
  send(data: unknown): Promise<void> | void;
  receive(): AsyncIterable<unknown>;
  close?(): Promise<void> | void;
  readonly iceServers?: RTCIceServer[];
}

/** The seed's abstract signaling: extend it to carry signal objects over a channel you
 * already have, and pass an instance as `signaling` to a transport. */
export declare abstract class BaseSignaling {
  abstract connect(): Promise<void>;
  abstract close(): Promise<void>;
  abstract send(data: unknown): Promise<void>;
  abstract receive(): AsyncGenerator<unknown>;
}

/** Signaling between two transports in one process. */
export declare class MemorySignaling extends BaseSignaling {
  constructor(sendBuffer: unknown[], receiveBuffer: unknown[]);
  connect(): Promise<void>;
  close(): Promise<void>;
  send(data: unknown): Promise<void>;
  receive(): AsyncGenerator<unknown>;
  /** Two ends joined back to back. */
  static createMemorySignalingPair(): Promise<[MemorySignaling, MemorySignaling]>;
}

/** A WebSocket constructor (Node 20: the ws package's default export). */
export type WebSocketConstructor = new (url: string) => object;

export interface RendezvousOptions {
  /** The WebSocket constructor; null: the runtime's own. */
  WebSocket?: WebSocketConstructor | null;
}

/** A client's signaling through the rendezvous (§7): joins `room` with the client `token`. */
export declare class RendezvousSignaling implements CallbackSignaling {
  constructor(url: string, room: string, token: string, options?: RendezvousOptions);
  url: string;
  room: string;
  token: string;
  iceServers: RTCIceServer[];
  /** This client's session id, once joined. */
  session: string | null;
  WebSocket: WebSocketConstructor | null;
  onsignal: ((signal: unknown) => void) | null;
  onclose: ((error: MCPWebRTCError | null) => void) | null;
  connect(): Promise<void>;
  send(signal: Signal): void;
  close(): void;
}

/** One client's session at a RendezvousHost: a signaling for one transport. */
export interface RendezvousSession extends CallbackSignaling {
  readonly session: string;
  /** Fresh ICE servers (TURN credentials) for this session. */
  readonly iceServers: RTCIceServer[];
  /** The label of the client token it joined with (null from an older rendezvous). */
  readonly label: string | null;
  /** This host's share of the room's pool (null from an older rendezvous). */
  readonly share: { hosts: number; sessions: number; roomSessions: number } | null;
  connect(): Promise<void>;
  close(): void;
}

/** The host side (§7): registers `room`; `onsession(signaling)` for each client. */
export declare class RendezvousHost {
  constructor(url: string, room: string, token: string, clientToken: string, options?: RendezvousOptions);
  url: string;
  room: string;
  token: string;
  clientToken: string;
  iceServers: RTCIceServer[];
  WebSocket: WebSocketConstructor | null;
  onsession: ((signaling: RendezvousSession) => void) | null;
  connect(): Promise<void>;
  close(): void;
}

// ---------------------------------------------------------------- transports

/** simple-peer's options, as the seed takes them: `wrtc`, `config` and `channelName` are
 * honoured, `initiator` picks the side; the others are accepted and ignored. */
export interface PeerOptions {
  initiator?: boolean;
  wrtc?: WebRTCImplementation;
  /** Its iceServers are used as given: none when it has none. */
  config?: RTCConfiguration;
  channelName?: string;
  [option: string]: unknown;
}

/** The seed's constructor argument. */
export interface WebRTCTransportOptions {
  signaling: BaseSignaling | SignalStream | CallbackSignaling;
  peerOptions?: PeerOptions;
  /** This module's options (DEFAULTS). */
  options?: TransportOptions;
}

/** WebRTCTransport's constructor argument. */
export interface WebRTCTransportInit extends WebRTCTransportOptions {
  /** "client" answers (the default), "server" offers. */
  role?: "client" | "server";
  /** Offers when true; wins over `role` and `peerOptions.initiator`. */
  initiator?: boolean;
  /** true (default): start() resolves once the data channel is open; false: once the
   * offer is out or awaited, and send() waits for the channel. */
  awaitChannel?: boolean;
}

/** The path a connection took (from getStats()). */
export interface ConnectionInfo {
  localCandidateType: string | null;
  remoteCandidateType: string | null;
  localAddress: string | null;
  remoteAddress: string | null;
  protocol: string | null;
  /** Round-trip time, in seconds. */
  rtt: number | null;
  bytesSent: number;
  bytesReceived: number;
  state: RTCPeerConnectionState;
}

/** MCP over one WebRTC data channel. */
export declare class WebRTCTransport implements Transport {
  constructor(init: WebRTCTransportInit);
  signaling: CallbackSignaling;
  initiator: boolean;
  options: ResolvedOptions;
  awaitChannel: boolean;
  channel: RTCDataChannel | null;
  readonly pc: RTCPeerConnection | null;
  /** What the peer's description says; null before it arrives. */
  readonly remote: Capabilities | null;
  /** The public key line the peer proved; null when it proved none. */
  readonly peerKey: string | null | undefined;
  /** Whether the connection has ended (closed here, by the peer, or failed). */
  readonly closed: boolean;
  onmessage?: Transport["onmessage"];
  onclose?: Transport["onclose"];
  onerror?: Transport["onerror"];
  start(): Promise<void>;
  /** Rejects with an MCPWebRTCError, code "too-large" or "peer-gone". */
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void>;
  close(): Promise<void>;
  connectionInfo(): Promise<ConnectionInfo>;
}

/** The MCP client's end, as in the seed: answers the server's offer. */
export declare class WebRTCClientTransport extends WebRTCTransport {
  constructor(options: WebRTCTransportOptions);
}

/** The MCP server's end, as in the seed: makes the offer and opens the data channel. */
export declare class WebRTCServerTransport extends WebRTCTransport {
  constructor(options: WebRTCTransportOptions);
}

// ---------------------------------------------------------------- a tiny MCP layer

export declare const PROTOCOL_VERSION: string;
/** MCP log levels, least severe first. */
export declare const LOG_LEVELS: readonly LoggingLevel[];

/** A transport as McpClient uses it: connectionInfo() where it has one. */
export type McpClientTransport = Transport & { connectionInfo?(): Promise<ConnectionInfo> };

/** A request's record in McpClient's history. */
export interface RequestRecord {
  id: number;
  method: string;
  /** The tool, prompt, resource or log level it names. */
  target: string | null;
  /** Epoch milliseconds. */
  started: number;
  /** Milliseconds; null while pending. */
  duration: number | null;
  /** UTF-8 bytes of the JSON text. */
  requestBytes: number;
  responseBytes: number | null;
  outcome: "pending" | "ok" | "error";
  error: string | null;
}

export interface RequestOptions {
  /** Each notifications/progress for this request. */
  onprogress?: ((params: Progress & { progressToken: string | number }) => void) | null;
  /** Milliseconds. */
  timeout?: number;
}

export interface McpClientOptions {
  name?: string;
  version?: string;
  /** Milliseconds, per request. Default 60000. */
  timeout?: number;
  /** Records kept in `history`. Default 1000. */
  historyLimit?: number;
}

/** A minimal MCP client over any Transport. Requests reject with an MCPWebRTCError (the
 * JSON-RPC error's code, or "timeout", "peer-gone"). */
export declare class McpClient {
  constructor(transport: McpClientTransport, options?: McpClientOptions);
  transport: McpClientTransport;
  info: Implementation;
  timeout: number;
  historyLimit: number;
  history: RequestRecord[];
  serverInfo: Implementation | null;
  serverCapabilities: ServerCapabilities;
  onclose: (() => void) | null;
  onnotification: ((message: JSONRPCNotification) => void) | null;
  onhistory: ((record: RequestRecord) => void) | null;
  connect(): Promise<InitializeResult>;
  request<T = unknown>(method: string, params?: Record<string, unknown>, options?: RequestOptions): Promise<T>;
  listTools(): Promise<ListToolsResult>;
  callTool(name: string, args?: Record<string, unknown>, options?: RequestOptions): Promise<CallToolResult>;
  listResources(): Promise<ListResourcesResult>;
  readResource(uri: string): Promise<ReadResourceResult>;
  subscribeResource(uri: string): Promise<EmptyResult>;
  unsubscribeResource(uri: string): Promise<EmptyResult>;
  listPrompts(): Promise<ListPromptsResult>;
  getPrompt(name: string, args?: Record<string, string>): Promise<GetPromptResult>;
  setLoggingLevel(level: LoggingLevel): Promise<EmptyResult>;
  /** The path now, or null with a transport that has no connectionInfo(). */
  stats(): Promise<ConnectionInfo | null>;
  /** `onstats(stats())` now and every `interval` ms until the returned function is called
   * or the connection closes. */
  watchStats(onstats: (stats: ConnectionInfo | null) => void, interval?: number): () => void;
  close(): Promise<void>;
}

/** A tool a page offers: its handler's value is the result (a string: one text item;
 * an object with `content`: that content; anything else: its JSON). */
export interface ToolDefinition {
  description?: string;
  inputSchema?: { type: "object"; [key: string]: unknown };
  handler(args: Record<string, unknown>): unknown;
}

export interface McpToolServerOptions {
  name?: string;
  version?: string;
  tools?: Record<string, ToolDefinition>;
}

/** A minimal MCP server exposing `tools` (initialize, ping, tools/list, tools/call). */
export declare class McpToolServer {
  constructor(transport: Transport, options?: McpToolServerOptions);
  transport: Transport;
  name: string;
  version: string;
  tools: Record<string, ToolDefinition>;
  start(): Promise<void>;
}

/** Options of connectClient and hostTools: the transport's and the rendezvous's. */
export type ConnectOptions = TransportOptions & RendezvousOptions;

/** Connects to the MCP server behind `room` at the rendezvous `url`. */
export declare function connectClient(url: string, room: string, token: string, options?: ConnectOptions): Promise<McpClient>;

/** Hosts `tools` under `room`: every client that joins gets its own session. */
export declare function hostTools(
  url: string,
  room: string,
  token: string,
  clientToken: string,
  tools: Record<string, ToolDefinition>,
  options?: ConnectOptions & { name?: string },
): Promise<RendezvousHost & { sessions: McpToolServer[] }>;
