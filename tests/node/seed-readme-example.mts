// The TypeScript seed's README example (mcp-webrtc 0.1.0, "Usage", written there in
// TypeScript), copied verbatim: the twin of seed-readme-example.mjs, type-checked (never run)
// by tests/test_node_interop.py against this repository's declarations (mcp-webrtc.d.ts).
  import { Client } from "@modelcontextprotocol/sdk/client/index.js";
  import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
  import { MemorySignaling, WebRTCClientTransport, WebRTCServerTransport } from "mcp-webrtc";
  import wrtc from "@roamhq/wrtc";

  const client = new Client({
    name: "example-client",
    version: "1.0.0",
  });

  const server = new McpServer({
    name: "example-server",
    version: "1.0.0",
  });
  server.registerTool("greet", {}, () => ({
    content: [{ type: "text", text: "Howdy" }],
  }));

  const [clientSignaling, serverSignaling] =
    await MemorySignaling.createMemorySignalingPair();

  const clientTransport = new WebRTCClientTransport({
    signaling: clientSignaling,
    peerOptions: {
      wrtc,
    },
  });
  const serverTransport = new WebRTCServerTransport({
    signaling: serverSignaling,
    peerOptions: {
      wrtc,
    },
  });

  await server.connect(serverTransport);
  await client.connect(clientTransport);

  const { tools } = await client.listTools();
  console.log(tools)

  await client.close();
  await server.close();
