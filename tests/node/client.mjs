// A Node MCP client (official TypeScript SDK) over simple-peer, against a Python server.
// Usage: node client.mjs URL ROOM TOKEN ; prints one JSON object with what it saw.
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { joinRoom } from "./simple-peer-transport.mjs";

const [url, room, token] = process.argv.slice(2);
const transport = await joinRoom(url, room, token);
const client = new Client({ name: "node-simple-peer", version: "1.0.0" });
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name);
const greet = (await client.callTool({ name: "greet", arguments: { name: "Node" } })).content[0].text;
let big = "";
while (big.length < 200 * 1024) big += "node-to-python-";
big = big.slice(0, 200 * 1024);
const echoed = (await client.callTool({ name: "echo", arguments: { data: big } })).content[0].text;
const hash = (s) => createHash("sha256").update(s).digest("hex");
console.log(JSON.stringify({ tools, greet, sentHash: hash(big), echoedHash: hash(echoed), echoedLength: echoed.length }));
await client.close();
transport.ws.close();
process.exit(0);
