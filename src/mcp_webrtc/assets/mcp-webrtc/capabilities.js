// capabilities.js: the capability line (docs/protocol.md §3): what a remote SDP says about the
// peer's receiving side, and ours added to the SDP we signal.

import { MCPWebRTCError } from "./errors.js";
import { FRAMING_VERSION } from "./framing.js";

const DIGITS = /^[0-9]{1,16}$/;

/** An announced size: ASCII digits within [1 KiB, 2^53] (or 0 where `zeroOk`), else null. */
function announcedSize(text, zeroOk = false) {
  const value = text.trim();
  if (!DIGITS.test(value)) return null;
  const size = BigInt(value); // exact: Number() rounds 2^53 + 1 down to 2^53
  if (zeroOk && size === 0n) return 0;
  return size >= 1024n && size <= 2n ** 53n ? Number(size) : null;
}

/** What a remote SDP says about the peer's receiving side (docs/protocol.md §3).
 * Never throws: malformed attributes and fields are ignored (and listed in `ignored`). */
export function parseCapabilities(sdp) {
  const caps = { sctpMaxMessageSize: 65536, version: null, maxMessageSize: null, deflate: false, ignored: [] };
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("a=max-message-size:")) {
      const size = announcedSize(line.slice(19), true);
      if (size === null) caps.ignored.push(line.slice(0, 60));
      else caps.sctpMaxMessageSize = size;
    } else if (line.startsWith("a=x-mcp-webrtc:")) {
      const fields = line.slice(15).split(";");
      if (!DIGITS.test(fields[0].trim())) {
        caps.ignored.push(line.slice(0, 60));
        continue;
      }
      caps.version = Number(fields[0]);
      for (const field of fields.slice(1)) {
        const [key, value = ""] = field.split("=").map((s) => s.trim());
        if (key === "max-message-size") {
          caps.maxMessageSize = announcedSize(value);
          if (caps.maxMessageSize === null) caps.ignored.push(line.slice(0, 60));
        }
        if (key === "compression") caps.deflate = value.split(",").includes("deflate-raw");
      }
    }
  }
  caps.chunking = caps.version !== null && caps.version >= 1;
  return caps;
}

/** Our capability line, added after the t= line of the SDP we signal. This module does
 * not inflate, so it announces no compression. */
export function addCapability(sdp, maxMessageSize) {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(eol);
  const at = lines.findIndex((l) => l.startsWith("t="));
  if (at < 0) throw new MCPWebRTCError("SDP has no t= line", "bad-sdp");
  lines.splice(at + 1, 0, `a=x-mcp-webrtc:${FRAMING_VERSION};max-message-size=${maxMessageSize}`);
  return lines.join(eol);
}
