// The official TypeScript SDK's stdio client running a command as its MCP server (for
// `mcp-webrtc connect`). Usage: node stdio_client.mjs COMMAND [ARGS...]
// Prints {"ready": [tools]} once initialized with a call pending, then one JSON line with
// what became of that call ({"error": message} or {"result": ...}), and exits.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, stderr: "inherit" });
const client = new Client({ name: "ts-sdk-stdio", version: "1.0.0" });
let outcome;
try {
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const pending = client.callTool({ name: "wait", arguments: { seconds: 120 } }, undefined, { timeout: 300000 });
  console.log(JSON.stringify({ ready: tools }));
  outcome = { result: await pending };
} catch (error) {
  outcome = { error: String(error?.message ?? error) };
}
console.log(JSON.stringify(outcome));
process.exit(0);
