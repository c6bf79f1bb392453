// The package's declarations (mcp-webrtc.d.ts) beyond the seed's README example: type-checked,
// never run, by tests/test_node_interop.py, with the declarations themselves (no skipLibCheck,
// so nothing here imports @roamhq/wrtc, whose own declarations do not compile). The lines
// marked as expected errors must be errors: the declarations are precise there, not `any`.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  BaseSignaling, DEFAULTS, MCPWebRTCError, McpClient, MemorySignaling, RendezvousHost,
  RendezvousSignaling, VERSION, WebRTCClientTransport, WebRTCServerTransport, WebRTCTransport,
  connectClient, generateIdentity, hostTools,
} from "mcp-webrtc";
import type { ConnectionInfo, RendezvousSession, WebRTCTransportOptions } from "mcp-webrtc";

/** As @roamhq/wrtc's default export has it. */
declare const wrtc: { RTCPeerConnection: typeof RTCPeerConnection };

export async function typed(url: string, WebSocket: new (url: string) => object): Promise<void> {
  const version: string = VERSION;
  const timeout: number = DEFAULTS.connectTimeout;
  const limit: number = DEFAULTS.maxMessageSize;
  // @ts-expect-error DEFAULTS is frozen
  DEFAULTS.chunkSize = 1;

  // the seed's shapes: a signaling of our own, extending BaseSignaling
  class QueueSignaling extends BaseSignaling {
    async connect(): Promise<void> {}
    async close(): Promise<void> {}
    async send(data: unknown): Promise<void> {}
    async *receive(): AsyncGenerator<unknown> {}
  }
  // @ts-expect-error BaseSignaling is abstract
  new BaseSignaling();
  // @ts-expect-error receive() is missing
  class Incomplete extends BaseSignaling { async connect() {} async close() {} async send() {} }
  const options: WebRTCTransportOptions = { signaling: new QueueSignaling(), peerOptions: { wrtc, trickle: true } };
  const server: Transport = new WebRTCServerTransport(options);
  const [a, b]: [MemorySignaling, MemorySignaling] = await MemorySignaling.createMemorySignalingPair();
  const client = new WebRTCClientTransport({ signaling: a, peerOptions: { wrtc, config: { iceServers: [] } }, options: { maxMessageSize: 1 << 20 } });
  // @ts-expect-error wrtc holds an RTCPeerConnection
  new WebRTCClientTransport({ signaling: a, peerOptions: { wrtc: {} } });
  // @ts-expect-error the signaling is required
  new WebRTCClientTransport({ peerOptions: { wrtc } });
  // @ts-expect-error an unknown option of this module
  new WebRTCClientTransport({ signaling: b, options: { maxMesageSize: 1 } });
  // @ts-expect-error maxMessageSize is a number
  new WebRTCServerTransport({ signaling: b, options: { maxMessageSize: "1 MiB" } });
  await new Client({ name: "typed", version }).connect(client);
  const chunking: boolean | undefined = client.remote?.chunking;
  const info: ConnectionInfo = await client.connectionInfo();
  const rtt: number | null = info.rtt;

  // the rendezvous, our own transport and the tiny client
  const signaling = new RendezvousSignaling(url, "room", "token", { WebSocket });
  const transport = new WebRTCTransport({ signaling, role: "client", options: { connectTimeout: timeout } });
  // @ts-expect-error role is "client" or "server"
  new WebRTCTransport({ signaling, role: "peer" });
  transport.onerror = (error: Error) => console.warn(error.message);
  const mcp = new McpClient(transport, { historyLimit: 10 });
  const { tools } = await mcp.listTools();
  const names: string[] = tools.map((tool) => tool.name);
  const result = await mcp.callTool("greet", { name: "types" }, { onprogress: ({ progress, total }) => console.log(progress, total), timeout: limit });
  const isError: boolean | undefined = result.isError;
  await mcp.setLoggingLevel("warning");
  // @ts-expect-error not an MCP log level
  await mcp.setLoggingLevel("verbose");
  const stop: () => void = mcp.watchStats((stats) => console.log(stats?.protocol));
  stop();
  const connected: McpClient = await connectClient(url, "room", "token", { WebSocket, expectPeerKeys: [] });
  const identity = await generateIdentity();
  const line: string = identity.line;
  const host = await hostTools(url, "room", "host", "client", { hi: { handler: () => "hello" } }, { identity, name: "page" });
  const sessions: number = host.sessions.length;
  const rendezvousHost: RendezvousHost = host;
  rendezvousHost.onsession = (session: RendezvousSession) => console.log(session.label, session.share?.roomSessions);
  try {
    await connected.request("tools/list");
  } catch (error) {
    if (error instanceof MCPWebRTCError) console.log(error.code, error.data);
  }
  console.log(chunking, rtt, names, isError, line, sessions, server, Incomplete);
}
