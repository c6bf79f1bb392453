// errors.js: the one error class of mcp-webrtc.js; `code` names the cause.

/** Every error this module raises or reports. `code` names the cause. */
export class MCPWebRTCError extends Error {
  constructor(message, code = "error", data = undefined) {
    super(message);
    this.name = "MCPWebRTCError";
    this.code = code;
    this.data = data;
  }
}
