// identity.js: signed descriptions (docs/protocol.md §8) with WebCrypto Ed25519.

import { MCPWebRTCError } from "./errors.js";

const encoder = new TextEncoder();

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
