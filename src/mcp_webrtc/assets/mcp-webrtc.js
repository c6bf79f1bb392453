// mcp-webrtc.js: MCP over WebRTC data channels, for browsers and Node (and any runtime with
// RTCPeerConnection and WebSocket). Plain ES modules with no dependencies: in Node, pass a
// WebRTC implementation (`@roamhq/wrtc`) and, for the rendezvous, a WebSocket (`ws`).
//
// - RendezvousSignaling / RendezvousHost: the rendezvous protocol (docs/protocol.md §7).
// - WebRTCTransport: the MCP TypeScript SDK's Transport interface (start, send, close,
//   onmessage, onclose, onerror) over one data channel with mcp-webrtc framing (§5):
//   whole JSON text messages, chunk frames for large ones, both directions.
// - BaseSignaling, MemorySignaling, WebRTCClientTransport, WebRTCServerTransport: the
//   names and constructor shapes of the TypeScript seed (`mcp-webrtc` 0.1.0 on npm).
// - McpClient / McpToolServer: a tiny JSON-RPC layer, for pages without the SDK.
//
// This file is the entry point: it re-exports the public names of its parts in
// ./mcp-webrtc/ (the rendezvous serves each at /mcp-webrtc/<part>.js). Types: mcp-webrtc.d.ts.
//
//   pure        errors, log, options, framing (§5), capabilities (§3), identity (§8), jsonrpc
//   signaling   rendezvous (§7), signaling (the seed's BaseSignaling, MemorySignaling)
//   transport   negotiation (offer/answer), sender (send path), stats, transport
//   MCP         mcp (McpClient, McpToolServer, connectClient, hostTools)

export { MCPWebRTCError } from "./mcp-webrtc/errors.js";
export { DEFAULTS, VERSION } from "./mcp-webrtc/options.js";
export {
  FRAMING_VERSION, FrameDecoder, FrameError, OversizeMessage, abortFrame, firstFrame, nextFrame,
} from "./mcp-webrtc/framing.js";
export { addCapability, parseCapabilities } from "./mcp-webrtc/capabilities.js";
export {
  KEY_TYPE, generateIdentity, identityFromSeed, identityMessage, keyFingerprint, sdpFingerprints,
  signDescription, verifyDescription,
} from "./mcp-webrtc/identity.js";
export { INVALID_REQUEST, MESSAGE_TOO_LARGE, PARSE_ERROR, sniffRequestId } from "./mcp-webrtc/jsonrpc.js";
export { RendezvousHost, RendezvousSignaling } from "./mcp-webrtc/rendezvous.js";
export { BaseSignaling, MemorySignaling } from "./mcp-webrtc/signaling.js";
export { WebRTCClientTransport, WebRTCServerTransport, WebRTCTransport } from "./mcp-webrtc/transport.js";
export {
  LOG_LEVELS, McpClient, McpToolServer, PROTOCOL_VERSION, connectClient, hostTools,
} from "./mcp-webrtc/mcp.js";
