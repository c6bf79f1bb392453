// The seed's client API (WebRTCClientTransport with @roamhq/wrtc) and the official MCP SDK,
// through the rendezvous (RendezvousSignaling over the ws package), against a Python
// server (`mcp-webrtc serve --app tests.app:SERVER`).
// Usage: node seed_client.mjs URL ROOM TOKEN SIZE ; prints one JSON object with what it saw.
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import wrtc from "@roamhq/wrtc";
import { RendezvousSignaling, WebRTCClientTransport } from "mcp-webrtc";
import WebSocket from "ws";

const [url, room, token, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const textOf = (result) => result.content[0].text;

const transport = new WebRTCClientTransport({
  signaling: new RendezvousSignaling(url, room, token, { WebSocket }),
  peerOptions: { wrtc },
});
const client = new Client({ name: "seed-client", version: "1.0.0" });
await client.connect(transport);
const tools = (await client.listTools()).tools.map((tool) => tool.name);

// SIZE characters as an argument: the server answers with their SHA-256 and length
const argument = randomBytes(Math.ceil((size * 3) / 4) + 3).toString("base64").slice(0, size);
let started = performance.now();
const digest = textOf(await client.callTool({ name: "digest", arguments: { data: argument } }));
const argumentMs = performance.now() - started;

// SIZE characters as a result: the test knows what blob(SIZE, 7) is
started = performance.now();
const blob = textOf(await client.callTool({ name: "blob", arguments: { size, seed: 7 } }));
const resultMs = performance.now() - started;

console.log(JSON.stringify({
  tools,
  chunking: transport.remote.chunking,
  argument: { sha256: sha256(argument), length: argument.length, digest, ms: Math.round(argumentMs) },
  result: { sha256: sha256(blob), length: blob.length, ms: Math.round(resultMs) },
}));
await client.close();
