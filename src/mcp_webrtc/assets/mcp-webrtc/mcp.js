// mcp.js: a tiny MCP layer over any Transport, for pages without the TypeScript SDK: McpClient,
// McpToolServer, and connectClient/hostTools through the rendezvous.

import { MCPWebRTCError } from "./errors.js";
import { VERSION } from "./options.js";
import { RendezvousHost, RendezvousSignaling } from "./rendezvous.js";
import { WebRTCTransport } from "./transport.js";

const encoder = new TextEncoder();

export const PROTOCOL_VERSION = "2025-06-18";
/** MCP log levels, least severe first (the values of logging/setLevel). */
export const LOG_LEVELS = Object.freeze(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]);

/** UTF-8 bytes of a message's JSON text (as this side serializes it). */
const jsonBytes = (message) => encoder.encode(JSON.stringify(message)).length;

/** A minimal MCP client over any Transport (for pages without the TypeScript SDK).
 *
 * - `onnotification(message)`: every notification from the server (log messages,
 *   progress, list changes...); `onclose()`: the connection ended.
 * - `history`: a record per request, the last `historyLimit` of them: `{id, method,
 *   target (the tool, prompt, resource or log level it names), started (epoch ms),
 *   duration (ms), requestBytes, responseBytes, outcome ("pending", "ok" or "error"),
 *   error}`; sizes are UTF-8 bytes of the JSON text. `onhistory(record)` when one is
 *   sent and when it ends.
 * - The server's `ping` is answered; its other requests get "method not found". */
export class McpClient {
  constructor(transport, { name = "mcp-webrtc.js", version = VERSION, timeout = 60000, historyLimit = 1000 } = {}) {
    this.transport = transport;
    this.info = { name, version };
    this.timeout = timeout;
    this.historyLimit = historyLimit;
    this.nextId = 1;
    this.pending = new Map();
    this.history = [];
    this.serverInfo = null;
    this.serverCapabilities = {};
    this.onclose = null;
    this.onnotification = null;
    this.onhistory = null;
    this._statsWatchers = new Set();
  }

  async connect() {
    this.transport.onmessage = (message) => this._onMessage(message);
    this.transport.onclose = () => {
      for (const stop of [...this._statsWatchers]) stop();
      for (const id of [...this.pending.keys()]) this._settle(id, { error: new MCPWebRTCError("connection closed", "peer-gone") });
      this.onclose?.();
    };
    await this.transport.start();
    const result = await this.request("initialize", { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: this.info });
    this.serverInfo = result.serverInfo;
    this.serverCapabilities = result.capabilities ?? {};
    await this.transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    return result;
  }

  _onMessage(message) {
    if (message.method === undefined) { // a response
      if (!this.pending.has(message.id)) return;
      const bytes = jsonBytes(message);
      const { error } = message;
      this._settle(message.id, error ? { error: new MCPWebRTCError(error.message, error.code, error.data), bytes } : { result: message.result, bytes });
    } else if (message.id === undefined) { // a notification
      if (message.method === "notifications/progress") this.pending.get(message.params?.progressToken)?.onprogress?.(message.params);
      this.onnotification?.(message);
    } else { // a request from the server
      const answer = message.method === "ping" ? { result: {} } : { error: { code: -32601, message: `method not found: ${message.method}` } };
      this.transport.send({ jsonrpc: "2.0", id: message.id, ...answer }).catch((error) => console.warn("mcp-webrtc:", error));
    }
  }

  /** Ends request `id`: its record, then its promise. */
  _settle(id, { result, error = null, bytes = null }) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    Object.assign(entry.record, { duration: performance.now() - entry.t0, responseBytes: bytes, outcome: error ? "error" : "ok", error: error?.message ?? null });
    this.onhistory?.(entry.record);
    if (error) entry.reject(error);
    else entry.resolve(result);
  }

  /** Resolves with the result; rejects with an MCPWebRTCError (the JSON-RPC error's code,
   * or "timeout", "peer-gone"). `onprogress(params)`: the request carries a progress token
   * and each notifications/progress for it is passed on. */
  request(method, params = {}, { onprogress = null, timeout = this.timeout } = {}) {
    const id = this.nextId++;
    if (onprogress) params = { ...params, _meta: { ...params._meta, progressToken: id } };
    const message = { jsonrpc: "2.0", id, method, params };
    const record = { id, method, target: params.name ?? params.uri ?? params.level ?? null, started: Date.now(), duration: null, requestBytes: jsonBytes(message), responseBytes: null, outcome: "pending", error: null };
    this.history.push(record);
    if (this.history.length > this.historyLimit) this.history.shift();
    this.onhistory?.(record);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this._settle(id, { error: new MCPWebRTCError(`${method} timed out`, "timeout") }), timeout);
      this.pending.set(id, { resolve, reject, timer, record, onprogress, t0: performance.now() });
      this.transport.send(message).catch((error) => this._settle(id, { error }));
    });
  }

  listTools() { return this.request("tools/list"); }
  /** `options`: `{ onprogress, timeout }` as for request(). */
  callTool(name, args = {}, options = {}) { return this.request("tools/call", { name, arguments: args }, options); }
  listResources() { return this.request("resources/list"); }
  readResource(uri) { return this.request("resources/read", { uri }); }
  subscribeResource(uri) { return this.request("resources/subscribe", { uri }); }
  unsubscribeResource(uri) { return this.request("resources/unsubscribe", { uri }); }
  listPrompts() { return this.request("prompts/list"); }
  getPrompt(name, args = {}) { return this.request("prompts/get", { name, arguments: args }); }
  /** The server sends log messages (notifications/message) at `level` (LOG_LEVELS) and above. */
  setLoggingLevel(level) { return this.request("logging/setLevel", { level }); }

  /** The path now: candidate pair, protocol, RTT, bytes (transport.connectionInfo()), or
   * null with a transport that has no such method. */
  async stats() {
    return this.transport.connectionInfo ? this.transport.connectionInfo() : null;
  }

  /** `onstats(stats())` now and every `interval` ms, until the returned function is
   * called or the connection closes. */
  watchStats(onstats, interval = 1000) {
    const tick = () => this.stats().then((stats) => { if (this._statsWatchers.has(stop)) onstats(stats); }, () => {});
    const timer = setInterval(tick, interval);
    const stop = () => { clearInterval(timer); this._statsWatchers.delete(stop); };
    this._statsWatchers.add(stop);
    tick();
    return stop;
  }

  close() { return this.transport.close(); }
}

/** A minimal MCP server exposing `tools` ({name: {description, inputSchema, handler}}),
 *  so a page can offer tools to a remote (e.g. Python) MCP client. */
export class McpToolServer {
  constructor(transport, { name = "browser", version = VERSION, tools = {} } = {}) {
    Object.assign(this, { transport, name, version, tools });
  }

  async start() {
    this.transport.onmessage = (message) => this._handle(message).catch((error) => console.warn(error));
    await this.transport.start();
  }

  async _handle(message) {
    if (message.method === undefined || message.id === undefined) return; // responses, notifications
    const reply = (result) => this.transport.send({ jsonrpc: "2.0", id: message.id, result });
    const fail = (code, text) => this.transport.send({ jsonrpc: "2.0", id: message.id, error: { code, message: text } });
    switch (message.method) {
      case "initialize":
        return reply({ protocolVersion: message.params?.protocolVersion ?? PROTOCOL_VERSION, capabilities: { tools: {} }, serverInfo: { name: this.name, version: this.version } });
      case "ping":
        return reply({});
      case "tools/list":
        return reply({ tools: Object.entries(this.tools).map(([name, t]) => ({ name, description: t.description ?? "", inputSchema: t.inputSchema ?? { type: "object" } })) });
      case "tools/call": {
        const tool = this.tools[message.params?.name];
        if (!tool) return fail(-32602, `unknown tool ${message.params?.name}`);
        try {
          const value = await tool.handler(message.params.arguments ?? {});
          const content = typeof value === "string" ? [{ type: "text", text: value }] : value.content ?? [{ type: "text", text: JSON.stringify(value) }];
          return reply({ content, isError: false });
        } catch (error) {
          return reply({ content: [{ type: "text", text: String(error?.message ?? error) }], isError: true });
        }
      }
      default:
        return fail(-32601, `method not found: ${message.method}`);
    }
  }
}

/** Connect to the MCP server behind `room` at the rendezvous `url`; returns a connected McpClient. */
export async function connectClient(url, room, token, options = {}) {
  const transport = new WebRTCTransport({ signaling: new RendezvousSignaling(url, room, token, options), role: "client", options });
  const client = new McpClient(transport);
  await client.connect();
  return client;
}

/** Host `tools` in this page under `room`: every client that joins gets its own session. */
export async function hostTools(url, room, token, clientToken, tools, options = {}) {
  const host = new RendezvousHost(url, room, token, clientToken, options);
  host.sessions = [];
  host.onsession = (signaling) => {
    const transport = new WebRTCTransport({ signaling, role: "server", options });
    const server = new McpToolServer(transport, { name: options.name ?? "browser", tools });
    host.sessions.push(server);
    const forget = () => {
      const at = host.sessions.indexOf(server);
      if (at >= 0) host.sessions.splice(at, 1);
    };
    server.start().then(() => {
      transport.onclose = forget;
      if (transport.closed) forget();
    }, (error) => {
      forget();
      console.warn("mcp-webrtc: session failed", error);
    });
  };
  await host.connect();
  return host;
}
