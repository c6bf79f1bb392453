// The official TypeScript SDK's Streamable HTTP client (for `mcp-webrtc connect --listen`).
// Usage: node http_client.mjs URL SIZE ; lists tools, calls echo with SIZE characters and
// a long-running call that reports progress, then prints one JSON object with what it saw.
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, size] = process.argv.slice(2);
const client = new Client({ name: "ts-sdk-http", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const data = "x".repeat(Number(size));
const echoed = (await client.callTool({ name: "echo", arguments: { data } })).content[0].text;
const progress = [];
const counted = await client.callTool({ name: "count", arguments: { n: 3 } }, undefined, {
  onprogress: (p) => progress.push([p.progress, p.total]),
});
const hash = (s) => createHash("sha256").update(s).digest("hex");
console.log(JSON.stringify({
  tools,
  session: transport.sessionId !== undefined,
  echoIntact: hash(echoed) === hash(data),
  counted: counted.content[0].text,
  progress,
}));
await transport.terminateSession();
await client.close();
process.exit(0);
