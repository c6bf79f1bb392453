// A Node McpServer (official TypeScript SDK) hosted over simple-peer, for a Python client.
// Usage: node server.mjs URL ROOM HOST_TOKEN CLIENT_TOKEN ; prints "ready" once registered.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { hostRoom } from "./simple-peer-transport.mjs";

const [url, room, hostToken, clientToken] = process.argv.slice(2);
await hostRoom(url, room, hostToken, clientToken, async (transport) => {
  const server = new McpServer({ name: "node-simple-peer-server", version: "1.0.0" });
  server.registerTool("add", { description: "Add", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }));
  server.registerTool("echo", { description: "Echo", inputSchema: { data: z.string() } },
    async ({ data }) => ({ content: [{ type: "text", text: data }] }));
  await server.connect(transport);
});
console.log("ready");
