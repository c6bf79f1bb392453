// sender.js: the send side of one data channel (docs/protocol.md §5): the limits of both
// sides checked first, whole JSON text where it fits, else chunk frames to a peer that
// reassembles them; each frame only while the channel's buffer is under the high watermark.

import { MCPWebRTCError } from "./errors.js";
import { FIRST_HEADER, abortFrame, firstFrame, nextFrame } from "./framing.js";

const encoder = new TextEncoder();

/** How often a sender looks at bufferedAmount again where the data channel has no
 * bufferedamountlow event (@roamhq/wrtc). */
const DRAIN_POLL_MS = 2;

export class ChannelSender {
  /** `options`: the transport's (maxMessageSize, chunkSize, highWatermark, lowWatermark). */
  constructor(options) {
    this.options = options;
    this.channel = null;
    this._lowEvents = false;
    this._drainWaiters = [];
    this._nextId = 0;
  }

  /** Sends on `channel` from now on; its bufferedamountlow event, where it has one, wakes
   * the writers waiting for its buffer to drain. */
  attach(channel) {
    this.channel = channel;
    this._lowEvents = "onbufferedamountlow" in channel; // before we set it
    channel.bufferedAmountLowThreshold = this.options.lowWatermark;
    channel.onbufferedamountlow = () => this.wake();
  }

  /** Whether the channel fires bufferedamountlow (browsers do; @roamhq/wrtc does not). */
  get drainEvents() {
    return this._lowEvents;
  }

  /** Wakes the waiting writers: the buffer drained, or the channel closed. */
  wake() {
    for (const wake of this._drainWaiters.splice(0)) wake();
  }

  async _writable() {
    const channel = this.channel;
    while (channel.readyState === "open" && channel.bufferedAmount > this.options.highWatermark) {
      await new Promise((resolve) => {
        this._drainWaiters.push(resolve);
        if (!this._lowEvents) setTimeout(() => this.wake(), DRAIN_POLL_MS);
      });
    }
    if (channel.readyState !== "open") throw new MCPWebRTCError("the data channel is closed", "peer-gone");
  }

  /** Sends `data` (text or a frame) as it is, where the channel is open; nothing otherwise. */
  sendRaw(data) {
    if (this.channel?.readyState === "open") this.channel.send(data);
  }

  /** Sends one JSON-RPC message (an object) on the open channel; `remote`: the peer's
   * capabilities (parseCapabilities). Rejects with code "too-large" or "peer-gone". */
  async send(message, remote) {
    const text = JSON.stringify(message);
    const data = encoder.encode(text);
    const size = data.length;
    if (size > this.options.maxMessageSize) {
      throw new MCPWebRTCError(`message of ${size} bytes exceeds this side's limit of ${this.options.maxMessageSize} bytes`, "too-large", { size, limit: this.options.maxMessageSize });
    }
    const sctpLimit = remote.sctpMaxMessageSize || 256 * 1024;
    if (!remote.chunking) {
      if (remote.sctpMaxMessageSize && size > remote.sctpMaxMessageSize) {
        throw new MCPWebRTCError(`message of ${size} bytes exceeds the peer's limit of ${remote.sctpMaxMessageSize} bytes (it does not reassemble chunked messages)`, "too-large", { size, limit: remote.sctpMaxMessageSize });
      }
      await this._writable();
      this.channel.send(text);
      return;
    }
    if (remote.maxMessageSize && size > remote.maxMessageSize) {
      throw new MCPWebRTCError(`message of ${size} bytes exceeds the peer's limit of ${remote.maxMessageSize} bytes`, "too-large", { size, limit: remote.maxMessageSize });
    }
    const chunk = Math.min(this.options.chunkSize, sctpLimit - FIRST_HEADER);
    await this._writable();
    if (size <= chunk) {
      this.channel.send(text);
      return;
    }
    this._nextId = (this._nextId + 1) >>> 0;
    const id = this._nextId;
    let sent = false;
    try {
      for (let offset = 0; offset < size; offset += chunk) {
        if (offset > 0) await this._writable();
        const piece = data.subarray(offset, offset + chunk);
        this.channel.send(offset === 0 ? firstFrame(id, size, piece) : nextFrame(id, piece));
        sent = true;
      }
    } catch (error) {
      if (sent) this.sendRaw(abortFrame(id));
      throw error;
    }
  }
}
