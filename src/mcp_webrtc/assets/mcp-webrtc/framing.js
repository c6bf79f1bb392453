// framing.js: the chunk framing (docs/protocol.md §5), pure: frames out, reassembly in.

import { MCPWebRTCError } from "./errors.js";

export const FRAMING_VERSION = 1;
const FIRST = 0x01;
const NEXT = 0x02;
const ABORT = 0x03;
const FIRST_DEFLATE = 0x04;
export const FIRST_HEADER = 13;
const NEXT_HEADER = 5;
const JSON_START = new Set([0x7b, 0x5b, 0x20, 0x09, 0x0a, 0x0d, 0xef]);

const encoder = new TextEncoder();

function header(kind, id, size) {
  const length = kind === NEXT || kind === ABORT ? NEXT_HEADER : FIRST_HEADER;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, kind);
  view.setUint32(1, id);
  if (length === FIRST_HEADER) view.setBigUint64(5, BigInt(size));
  return bytes;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function firstFrame(id, size, payload) {
  return concat(header(FIRST, id, size), payload);
}

export function nextFrame(id, payload) {
  return concat(header(NEXT, id, 0), payload);
}

export function abortFrame(id) {
  return header(ABORT, id, 0);
}

export class FrameError extends MCPWebRTCError {
  constructor(message) {
    super(message, "frame-error");
  }
}

export class OversizeMessage extends MCPWebRTCError {
  constructor(size, limit, head) {
    super(`incoming message of ${size} bytes exceeds the limit of ${limit} bytes`, "too-large");
    this.size = size;
    this.limit = limit;
    this.head = head;
  }
}

/** Reassembles chunk frames. feed() returns a complete payload (string or Uint8Array)
 * or null; it throws FrameError or OversizeMessage (then drops that message's frames). */
export class FrameDecoder {
  constructor(maxMessageSize, maxPartial = 64) {
    this.maxMessageSize = maxMessageSize;
    this.maxPartial = maxPartial;
    this.partials = new Map();
    this.discarding = new Map();
  }

  /** A broken message: its later frames are dropped silently (one error per message). */
  fail(id, reason) {
    this.partials.delete(id);
    this.discard(id, Infinity);
    return new FrameError(`message ${id}: ${reason}`);
  }

  discard(id, left) {
    this.discarding.set(id, left);
    if (this.discarding.size > 1024) this.discarding.delete(this.discarding.keys().next().value);
  }

  get bufferedBytes() {
    let total = 0;
    for (const p of this.partials.values()) total += p.received;
    return total;
  }

  feed(data) {
    if (typeof data === "string") {
      if (data.length > this.maxMessageSize / 4) {
        const size = encoder.encode(data).length;
        if (size > this.maxMessageSize) {
          throw new OversizeMessage(size, this.maxMessageSize, encoder.encode(data.slice(0, 4096)));
        }
      }
      return data;
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length === 0) throw new FrameError("empty binary frame");
    const kind = bytes[0];
    if (JSON_START.has(kind)) {
      if (bytes.length > this.maxMessageSize) {
        throw new OversizeMessage(bytes.length, this.maxMessageSize, bytes.slice(0, 4096));
      }
      return bytes;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (kind === FIRST || kind === FIRST_DEFLATE) {
      if (bytes.length < FIRST_HEADER) throw new FrameError("FIRST frame is shorter than its header");
      const id = view.getUint32(1);
      if (kind === FIRST_DEFLATE) throw this.fail(id, "FIRST_DEFLATE was not announced");
      const size = Number(view.getBigUint64(5));
      const payload = bytes.subarray(FIRST_HEADER);
      this.discarding.delete(id);
      if (this.partials.has(id)) throw this.fail(id, "FIRST frame for a message that is still open");
      if (payload.length > size) throw this.fail(id, "FIRST frame carries more bytes than its size");
      if (size > this.maxMessageSize) {
        if (payload.length < size) this.discard(id, size - payload.length);
        throw new OversizeMessage(size, this.maxMessageSize, payload.slice(0, 4096));
      }
      if (payload.length === size) return payload.slice();
      if (this.partials.size >= this.maxPartial) {
        throw this.fail(id, `more than ${this.maxPartial} messages in flight`);
      }
      // memory grows with the bytes that actually arrive, not with the announced size
      this.partials.set(id, { size, chunks: [payload.slice()], received: payload.length });
      return null;
    }
    if (kind === NEXT) {
      if (bytes.length < NEXT_HEADER) throw new FrameError("NEXT frame is shorter than its header");
      const id = view.getUint32(1);
      const payload = bytes.subarray(NEXT_HEADER);
      const partial = this.partials.get(id);
      // Senders never make empty NEXT frames; a flood of them would cost work per frame
      // without progress, so the message is discarded and its later frames dropped.
      if (partial && payload.length === 0) throw this.fail(id, "NEXT frame without payload");
      if (!partial) {
        if (this.discarding.has(id)) {
          const left = this.discarding.get(id) - payload.length;
          if (left <= 0) this.discarding.delete(id);
          else this.discarding.set(id, left);
          return null;
        }
        throw new FrameError(`NEXT frame for unknown message ${id}`);
      }
      const end = partial.received + payload.length;
      if (end > partial.size) throw this.fail(id, "overruns its announced size");
      partial.chunks.push(payload.slice());
      partial.received = end;
      if (end < partial.size) return null;
      this.partials.delete(id);
      const message = new Uint8Array(partial.size);
      let offset = 0;
      for (const chunk of partial.chunks) {
        message.set(chunk, offset);
        offset += chunk.length;
      }
      return message;
    }
    if (kind === ABORT) {
      if (bytes.length !== NEXT_HEADER) throw new FrameError("ABORT frame has a wrong length");
      const id = view.getUint32(1);
      this.partials.delete(id);
      this.discarding.delete(id);
      return null;
    }
    throw new FrameError(`unknown frame type 0x${kind.toString(16).padStart(2, "0")}`);
  }
}
