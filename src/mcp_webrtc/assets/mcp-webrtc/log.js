// log.js: the steps of a connection. In a browser, at the console's verbose level (hidden
// unless asked for); in Node, only with NODE_DEBUG=mcp-webrtc, on stderr (stdout may be
// carrying MCP).

const IN_NODE = typeof globalThis.process?.versions?.node === "string";
const DEBUG = !IN_NODE || /\bmcp-webrtc\b/.test(globalThis.process.env?.NODE_DEBUG ?? "");
export const debug = (...args) => {
  if (DEBUG) (IN_NODE ? console.error : console.debug)("mcp-webrtc:", ...args);
};
