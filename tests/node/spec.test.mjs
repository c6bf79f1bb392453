// mcp-webrtc.js against docs/protocol.md: its test vectors, plus framing round trips.
// Run: node --test tests/node/  (the Python suite runs it too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  FrameDecoder, FrameError, OversizeMessage, abortFrame, addCapability, firstFrame,
  nextFrame, parseCapabilities, sniffRequestId, RendezvousHost,
  identityFromSeed, keyFingerprint, signDescription, verifyDescription,
} from "../../src/mcp_webrtc/assets/mcp-webrtc.js";

const spec = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
const block = /```jsonl vectors\n([\s\S]*?)```/.exec(spec)[1];
const vectors = block.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));

test("encode vectors (plain frames)", () => {
  for (const v of vectors.filter((v) => v.kind === "encode" && v.frame !== "first_deflate")) {
    const payload = unhex(v.payload ?? "");
    const frame = v.frame === "first" ? firstFrame(v.id, v.total, payload)
      : v.frame === "next" ? nextFrame(v.id, payload) : abortFrame(v.id);
    assert.equal(hex(frame), v.hex, JSON.stringify(v));
  }
});

// This module announces no compression, so it never receives FIRST_DEFLATE (it refuses it).
const usesDeflate = (v) => v.frames.some((f) => f.hex?.startsWith("04"));

test("decode vectors", () => {
  for (const v of vectors.filter((v) => v.kind === "decode" && !usesDeflate(v))) {
    const decoder = new FrameDecoder(v.limit);
    const messages = [];
    const errors = [];
    for (const f of v.frames) {
      try {
        const out = decoder.feed(f.text ?? unhex(f.hex));
        if (out !== null) messages.push(typeof out === "string" ? out : new TextDecoder().decode(out));
      } catch (error) {
        if (error instanceof OversizeMessage) errors.push(-32050);
        else if (error instanceof FrameError) errors.push(-32700);
        else throw error;
      }
    }
    assert.deepEqual(messages, v.messages, JSON.stringify(v));
    assert.deepEqual(errors, v.errors, JSON.stringify(v));
  }
});

test("FIRST_DEFLATE is refused since this module never announces compression", () => {
  const decoder = new FrameDecoder(1024);
  assert.throws(() => decoder.feed(unhex("04000000050000000000000004ffffffff")), FrameError);
});

test("capability line vectors", () => {
  for (const v of vectors.filter((v) => v.kind === "sdp")) {
    const caps = parseCapabilities(`v=0\r\n${v.line}\r\n`);
    assert.equal(caps.version, v.version);
    assert.equal(caps.maxMessageSize, v.max_message_size);
    assert.equal(caps.deflate, v.deflate);
    if ("sctp_max_message_size" in v) assert.equal(caps.sctpMaxMessageSize, v.sctp_max_message_size);
  }
  const added = addCapability("v=0\r\nt=0 0\r\na=x\r\n", 1000);
  assert.equal(added, "v=0\r\nt=0 0\r\na=x-mcp-webrtc:1;max-message-size=1000\r\na=x\r\n");
  assert.equal(parseCapabilities("a=max-message-size:262144").sctpMaxMessageSize, 262144);
  assert.equal(parseCapabilities("v=0").chunking, false);
});

test("request id sniffing vectors", () => {
  for (const v of vectors.filter((v) => v.kind === "sniff")) {
    assert.equal(sniffRequestId(new TextEncoder().encode(v.head)), v.id, v.head);
  }
});

test("chunked round trip and abort", () => {
  const data = new Uint8Array(100_003).map((_, i) => i % 251);
  const decoder = new FrameDecoder(1 << 20);
  let out = null;
  for (let offset = 0; offset < data.length; offset += 1000) {
    const piece = data.subarray(offset, offset + 1000);
    out = decoder.feed(offset === 0 ? firstFrame(3, data.length, piece) : nextFrame(3, piece));
  }
  assert.deepEqual(out, data);
  decoder.feed(firstFrame(4, 5000, new Uint8Array(10)));
  assert.equal(decoder.bufferedBytes, 10);
  decoder.feed(abortFrame(4));
  assert.equal(decoder.bufferedBytes, 0);
});

test("memory follows the bytes that arrive, not the announced size", () => {
  // Regression: each FIRST allocated its announced size at once (1 TiB here: RangeError).
  const decoder = new FrameDecoder(2 ** 50);
  assert.equal(decoder.feed(firstFrame(1, 2 ** 40, new Uint8Array(10))), null);
  assert.equal(decoder.bufferedBytes, 10);
});

test("ids of discarded oversize messages are capped", () => {
  const decoder = new FrameDecoder(100);
  for (let id = 0; id < 2000; id++) {
    assert.throws(() => decoder.feed(firstFrame(id, 1000, new Uint8Array(10))), OversizeMessage);
  }
  assert.ok(decoder.discarding.size <= 1024);
});

test("a host session uses the fresh ICE servers of its peer-joined", () => {
  const host = new RendezvousHost("ws://unused/", "lab", "h", "c");
  host.iceServers = [{ urls: ["turn:t:3478"], username: "old", credential: "expired" }];
  const sessions = [];
  host.onsession = (session) => sessions.push(session);
  const fresh = [{ urls: ["turn:t:3478"], username: "new", credential: "valid" }];
  host._dispatch({ type: "peer-joined", session: "s1", iceServers: fresh });
  host._dispatch({ type: "peer-joined", session: "s2" }); // an older rendezvous
  assert.deepEqual(sessions[0].iceServers, fresh);
  assert.deepEqual(sessions[1].iceServers, host.iceServers);
  // a session the rendezvous ended (rate-limited) is closed, others are not
  let closed = 0;
  sessions[0].onclose = () => closed++;
  host._dispatch({ type: "error", code: "unknown-session", session: "s1" });
  assert.equal(closed, 0);
  host._dispatch({ type: "error", code: "rate-limited", session: "s1" });
  assert.equal(closed, 1);
});

test("a host session carries its token label and its share of the room's pool", () => {
  const host = new RendezvousHost("ws://unused/", "lab", "h", "c");
  const sessions = [];
  host.onsession = (session) => sessions.push(session);
  const share = { hosts: 2, sessions: 3, roomSessions: 5 };
  host._dispatch({ type: "peer-joined", session: "s1", iceServers: [], label: "alice", share });
  host._dispatch({ type: "peer-joined", session: "s2", iceServers: [] }); // an older rendezvous
  assert.equal(sessions[0].label, "alice");
  assert.deepEqual(sessions[0].share, share);
  assert.equal(sessions[1].label, null);
  assert.equal(sessions[1].share, null);
});

test("identity vectors (§8): verified, refused, and signed alike", async () => {
  const cases = vectors.filter((v) => v.kind === "identity");
  assert.ok(cases.length >= 4);
  for (const v of cases) {
    if (!v.valid) {
      await assert.rejects(verifyDescription(v.type, v.sdp, v.offer ?? null), (e) => e.code === "peer-identity", v.why);
      continue;
    }
    const key = v.key.split(" ").slice(0, 2).join(" ");
    assert.equal(await verifyDescription(v.type, v.sdp, v.offer ?? null), key);
    assert.equal(await keyFingerprint(v.key), v.fingerprint);
    const signer = await identityFromSeed(unhex(v.seed));
    assert.equal(signer.line, key);
    const plain = v.sdp.replace(/;identity=[^\r\n]*/, "");
    assert.equal(await signDescription(signer, v.type, plain, v.offer ?? null), v.sdp);
  }
});
