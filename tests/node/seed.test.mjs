// The package as the TypeScript seed's users meet it (mcp-webrtc 0.1.0's names and
// constructor shapes), imported by its package name: tests/node depends on the repository
// itself ("mcp-webrtc": "file:../.."). Real peers: @roamhq/wrtc, the official MCP SDK.
// Run: node --test tests/node/seed.test.mjs (tests/test_node_interop.py runs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import wrtc from "@roamhq/wrtc";
import { z } from "zod";
import {
  BaseSignaling, MCPWebRTCError, MemorySignaling, RendezvousSignaling, WebRTCClientTransport,
  WebRTCServerTransport, WebRTCTransport,
} from "mcp-webrtc";
import { SimplePeerTransport } from "./simple-peer-transport.mjs";

const MiB = 1024 * 1024;
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
/** `size` characters of base64 from random bytes: nothing to escape, barely compressible. */
const randomText = (size) => randomBytes(Math.ceil((size * 3) / 4) + 3).toString("base64").slice(0, size);

test("the package name resolves to this repository's module", () => {
  const own = new URL("../../src/mcp_webrtc/assets/mcp-webrtc.js", import.meta.url).href;
  assert.equal(import.meta.resolve("mcp-webrtc"), own);
});

test("the seed's README example, copied verbatim, lists its tool", { timeout: 30000 }, async () => {
  const logged = [];
  const log = console.log;
  console.log = (...args) => logged.push(args);
  try {
    await import("./seed-readme-example.mjs");
  } finally {
    console.log = log;
  }
  assert.deepEqual(logged.map(([tools]) => tools.map((tool) => tool.name)), [["greet"]]);
});

/** The README example's shape: server and client in one process over MemorySignaling. */
async function seedShapedPair(register) {
  const client = new Client({ name: "example-client", version: "1.0.0" });
  const server = new McpServer({ name: "example-server", version: "1.0.0" });
  register(server);
  const [clientSignaling, serverSignaling] = await MemorySignaling.createMemorySignalingPair();
  const clientTransport = new WebRTCClientTransport({ signaling: clientSignaling, peerOptions: { wrtc } });
  const serverTransport = new WebRTCServerTransport({ signaling: serverSignaling, peerOptions: { wrtc } });
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  return { client, server, clientTransport };
}

test("5 MiB result and 5 MiB argument, Node to Node, byte-exact", { timeout: 60000 }, async (t) => {
  const result = randomText(5 * MiB);
  const { client, server, clientTransport } = await seedShapedPair((server) => {
    server.registerTool("blob", {}, () => ({ content: [{ type: "text", text: result }] }));
    server.registerTool("digest", { inputSchema: { data: z.string() } }, ({ data }) => ({
      content: [{ type: "text", text: `${sha256(data)}:${data.length}` }],
    }));
  });
  try {
    assert.deepEqual((await client.listTools()).tools.map((tool) => tool.name), ["blob", "digest"]);
    assert.equal(clientTransport.remote.chunking, true, "both ends use the chunk framing");

    let started = performance.now();
    const received = (await client.callTool({ name: "blob", arguments: {} })).content[0].text;
    t.diagnostic(`5 MiB result: ${Math.round(performance.now() - started)} ms`);
    assert.equal(received.length, 5 * MiB);
    assert.equal(sha256(received), sha256(result));

    const argument = randomText(5 * MiB);
    started = performance.now();
    const digest = (await client.callTool({ name: "digest", arguments: { data: argument } })).content[0].text;
    t.diagnostic(`5 MiB argument: ${Math.round(performance.now() - started)} ms`);
    assert.equal(digest, `${sha256(argument)}:${5 * MiB}`);
  } finally {
    await client.close();
    await server.close();
  }
});

test("a plain seed peer (simple-peer, one message per data-channel message) serves our client", { timeout: 60000 }, async () => {
  const server = new McpServer({ name: "seed-like", version: "1.0.0" });
  server.registerTool("echo", { inputSchema: { data: z.string() } }, ({ data }) => ({ content: [{ type: "text", text: data }] }));
  const [clientSignaling, serverSignaling] = await MemorySignaling.createMemorySignalingPair();
  const seedPeer = new SimplePeerTransport({
    initiator: true,
    sendSignal: (signal) => serverSignaling.send(signal),
    // its ICE-complete timer outlives destroy() and would hold this process 5 s at the end
    peerOptions: { iceCompleteTimeout: 100 },
  });
  (async () => {
    for await (const signal of serverSignaling.receive()) if (signal.type !== "bye") seedPeer.signal(signal);
  })();
  const ours = new WebRTCClientTransport({ signaling: clientSignaling, peerOptions: { wrtc } });
  const client = new Client({ name: "example-client", version: "1.0.0" });
  try {
    await Promise.all([server.connect(seedPeer), client.connect(ours)]);
    assert.equal(ours.remote.chunking, false, "no capability line from simple-peer");
    const data = randomText(200 * 1024);
    const echoed = (await client.callTool({ name: "echo", arguments: { data } })).content[0].text;
    assert.equal(sha256(echoed), sha256(data));
    // above the plain peer's SCTP limit: a clear local error, and the session goes on
    await assert.rejects(
      client.callTool({ name: "echo", arguments: { data: randomText(MiB) } }),
      (error) => error instanceof MCPWebRTCError && error.code === "too-large",
    );
    assert.equal((await client.callTool({ name: "echo", arguments: { data: "still here" } })).content[0].text, "still here");
  } finally {
    await client.close();
    await server.close();
    await serverSignaling.close();
  }
});

test("no server: client.connect() rejects with the transport's cause", { timeout: 10000 }, async () => {
  const [clientSignaling] = await MemorySignaling.createMemorySignalingPair();
  const transport = new WebRTCClientTransport({
    signaling: clientSignaling, peerOptions: { wrtc }, options: { connectTimeout: 300 },
  });
  const client = new Client({ name: "example-client", version: "1.0.0" });
  await assert.rejects(client.connect(transport), (error) => error instanceof MCPWebRTCError && error.code === "connect-timeout");
});

/** An RTCPeerConnection that records its configuration and refuses to go on. */
function recordingWrtc(seen) {
  return {
    RTCPeerConnection: class {
      constructor(config) {
        seen.push(config);
        throw new Error("recorded");
      }
    },
  };
}

test("ICE servers: none unless given; peerOptions.config is honoured as simple-peer does", async () => {
  const seen = [];
  const start = async (peerOptions, options) => {
    const [signaling] = await MemorySignaling.createMemorySignalingPair();
    await assert.rejects(new WebRTCServerTransport({ signaling, peerOptions, options }).start(), /recorded/);
  };
  await start({ wrtc: recordingWrtc(seen) });
  const turn = { urls: "turn:127.0.0.1:3478", username: "u", credential: "p" };
  await start({ wrtc: recordingWrtc(seen), config: { iceServers: [turn], iceTransportPolicy: "relay" } });
  await start({ wrtc: recordingWrtc(seen), config: {} });
  await start({}, { wrtc: recordingWrtc(seen), iceServers: [turn] });
  assert.deepEqual(seen, [
    { iceServers: [] },
    { iceServers: [turn], iceTransportPolicy: "relay" },
    { iceServers: [] },
    { iceServers: [turn] },
  ]);
});

test("a runtime without RTCPeerConnection or WebSocket gets a clear error", { skip: globalThis.RTCPeerConnection !== undefined }, async () => {
  const [signaling] = await MemorySignaling.createMemorySignalingPair();
  await assert.rejects(new WebRTCClientTransport({ signaling }).start(), (error) => error.code === "config");
  const rendezvous = new RendezvousSignaling("ws://127.0.0.1:9/", "lab", "token", { WebSocket: globalThis.WebSocket });
  if (globalThis.WebSocket === undefined) await assert.rejects(rendezvous.connect(), (error) => error.code === "config");
});

test("the rendezvous signaling uses the WebSocket it is given", async () => {
  const urls = [];
  class Unreachable {
    constructor(url) {
      urls.push(url);
      queueMicrotask(() => this.onerror?.({}));
    }
    close() {}
  }
  const signaling = new RendezvousSignaling("ws://127.0.0.1:9/", "lab", "token", { WebSocket: Unreachable });
  await assert.rejects(signaling.connect(), (error) => error.code === "unreachable");
  assert.deepEqual(urls, ["ws://127.0.0.1:9/"]);
});

test("BaseSignaling is abstract; MemorySignaling delivers in order and ends on close", async () => {
  assert.throws(() => new BaseSignaling(), TypeError);
  const [one, two] = await MemorySignaling.createMemorySignalingPair();
  assert.ok(one instanceof BaseSignaling);
  const received = (async () => {
    const seen = [];
    for await (const signal of two.receive()) seen.push(signal);
    return seen;
  })();
  await one.send({ n: 1 });
  await one.send({ n: 2 });
  await two.close();
  assert.deepEqual(await received, [{ n: 1 }, { n: 2 }]);
  await one.close();
  await assert.rejects(one.send({ n: 3 }), (error) => error.code === "signaling-closed");
});

test("our WebRTCTransport takes the seed's shape too: peerOptions.initiator", () => {
  const signaling = new MemorySignaling([], []);
  assert.equal(new WebRTCTransport({ signaling, peerOptions: { initiator: true } }).initiator, true);
  assert.equal(new WebRTCTransport({ signaling, peerOptions: { wrtc } }).initiator, false);
  assert.equal(new WebRTCTransport({ signaling, role: "server" }).initiator, true);
});
