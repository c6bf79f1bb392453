// signaling.js: the seed's signaling (mcp-webrtc 0.1.0): BaseSignaling and MemorySignaling,
// and the adapter that gives one in its shape the callback interface the transport drives.

import { MCPWebRTCError } from "./errors.js";
import { parseJson } from "./jsonrpc.js";
import { debug } from "./log.js";

const notImplemented = (name) => new MCPWebRTCError(`${name}() is not implemented by this signaling`, "config");

/** A signaling channel in the seed's shape: subclass it to carry signal objects over any
 * channel you already have (an A2A connection, a chat, a queue) and pass an instance as
 * `signaling` to a transport. Each method is abstract. */
export class BaseSignaling {
  constructor() {
    if (new.target === BaseSignaling) throw new TypeError("BaseSignaling is abstract: extend it");
  }

  /** Opens the channel. @returns {Promise<void>} */
  async connect() { throw notImplemented("connect"); }

  /** Closes the channel; receive() ends. @returns {Promise<void>} */
  async close() { throw notImplemented("close"); }

  /** Sends one signal object to the peer. @param {unknown} data @returns {Promise<void>} */
  async send(data) { throw notImplemented("send"); }

  /** The peer's signal objects, in order, until the channel closes.
   * @returns {AsyncGenerator<unknown>} */
  async *receive() { throw notImplemented("receive"); }
}

/** Receivers waiting for something to be pushed to a MemorySignaling buffer. */
const memoryWaiters = new WeakMap();

function wakeReaders(buffer) {
  const waiters = memoryWaiters.get(buffer) ?? [];
  memoryWaiters.delete(buffer);
  for (const wake of waiters) wake();
}

/** Signaling between two transports in one process (tests, examples): what one end sends
 * is pushed to `sendBuffer`, the other end's receive buffer. */
export class MemorySignaling extends BaseSignaling {
  /** @param {unknown[]} sendBuffer @param {unknown[]} receiveBuffer */
  constructor(sendBuffer, receiveBuffer) {
    super();
    this._sendBuffer = sendBuffer;
    this._receiveBuffer = receiveBuffer;
    this._closed = false;
  }

  async connect() {}

  async close() {
    this._closed = true;
    wakeReaders(this._receiveBuffer);
  }

  async send(data) {
    if (this._closed) throw new MCPWebRTCError("the signaling is closed", "signaling-closed");
    this._sendBuffer.push(data);
    wakeReaders(this._sendBuffer);
  }

  async *receive() {
    const buffer = this._receiveBuffer;
    while (!this._closed || buffer.length > 0) {
      if (buffer.length > 0) {
        yield buffer.shift();
        continue;
      }
      await new Promise((resolve) => {
        if (!memoryWaiters.has(buffer)) memoryWaiters.set(buffer, []);
        memoryWaiters.get(buffer).push(resolve);
      });
    }
  }

  /** Two ends joined back to back. @returns {Promise<[MemorySignaling, MemorySignaling]>} */
  static async createMemorySignalingPair() {
    const fromFirst = [];
    const fromSecond = [];
    return [new MemorySignaling(fromFirst, fromSecond), new MemorySignaling(fromSecond, fromFirst)];
  }
}

/** Calls `action` (which may throw or return a rejecting promise) and only logs a failure:
 * signaling that is already gone must not end the caller, nor leave an unhandled rejection. */
function quietly(action, what) {
  try {
    Promise.resolve(action()).catch((error) => debug(what, "failed:", error?.message ?? error));
  } catch (error) {
    debug(what, "failed:", error?.message ?? error);
  }
}

/** The transport's callback interface (onsignal, onclose) over a signaling in the seed's
 * shape (connect, send, receive, close): a BaseSignaling or any object with receive(). */
class ReceivingSignaling {
  constructor(inner) {
    this.inner = inner;
    this.onsignal = null;
    this.onclose = null;
  }

  get iceServers() {
    return this.inner.iceServers ?? [];
  }

  async connect() {
    await this.inner.connect?.();
    this._pump();
  }

  async _pump() {
    try {
      for await (const signal of this.inner.receive()) {
        // simple-peer takes signals as objects or as their JSON text; so do we
        this.onsignal?.(typeof signal === "string" ? parseJson(signal) : signal);
      }
      this.onclose?.(null);
    } catch (error) {
      this.onclose?.(new MCPWebRTCError(`the signaling failed: ${error?.message ?? error}`, "signaling-closed"));
    }
  }

  send(signal) {
    quietly(() => this.inner.send(signal), "signaling send");
  }

  close() {
    quietly(() => this.inner.close?.(), "signaling close");
  }
}

/** `signaling` as the transport drives it: ours as it is, one in the seed's shape adapted. */
export function adaptSignaling(signaling) {
  if (!signaling || typeof signaling !== "object") throw new MCPWebRTCError("a transport needs a signaling", "config");
  return typeof signaling.receive === "function" ? new ReceivingSignaling(signaling) : signaling;
}
