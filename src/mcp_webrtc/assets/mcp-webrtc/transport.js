// transport.js: MCP over one WebRTC data channel (WebRTCTransport), and the seed's two
// transports (WebRTCClientTransport, WebRTCServerTransport: mcp-webrtc 0.1.0 on npm).

import { MCPWebRTCError } from "./errors.js";
import { FrameDecoder, OversizeMessage, abortFrame } from "./framing.js";
import { MESSAGE_TOO_LARGE, PARSE_ERROR, errorResponse, sniffRequestId } from "./jsonrpc.js";
import { debug } from "./log.js";
import { Negotiation } from "./negotiation.js";
import { DEFAULTS, fromPeerOptions } from "./options.js";
import { ChannelSender } from "./sender.js";
import { adaptSignaling } from "./signaling.js";
import { connectionInfo } from "./stats.js";

const decoder = new TextDecoder();

/** How long a probe frame may stay counted in bufferedAmount before another goes, and how
 * many go at most (see WebRTCTransport._probe). */
const PROBE_WAIT_MS = 50;
const PROBE_ATTEMPTS = 20;

/** MCP over one WebRTC data channel; implements the MCP TypeScript SDK's Transport.
 *  - `signaling`: a RendezvousSignaling, a RendezvousHost session, or any object with
 *    connect/send/close and onsignal/onclose; or one in the seed's shape (a BaseSignaling:
 *    connect/send/receive/close).
 *  - `role` "client" answers by default, "server" offers (as in the Python package);
 *    `initiator` (or `peerOptions.initiator`, as in the seed) says so directly.
 *  - `options`: see DEFAULTS; `peerOptions`: the seed's simple-peer options (fromPeerOptions).
 *  - `awaitChannel`: start() resolves once the data channel is open (default); false: once
 *    the offer is out or awaited, and send() waits for the channel (the seed's way, which
 *    lets one process start its server before its client). */
export class WebRTCTransport {
  constructor({ signaling, role = "client", initiator, peerOptions, options = {}, awaitChannel = true }) {
    const peer = peerOptions ?? {};
    this.signaling = adaptSignaling(signaling);
    this.initiator = initiator ?? peer.initiator ?? role === "server";
    this.options = { ...DEFAULTS, ...fromPeerOptions(peer), ...options };
    this.awaitChannel = awaitChannel;
    const chunk = this.options.chunkSize;
    if (!(Number.isInteger(chunk) && chunk >= 1024 && chunk <= 256 * 1024 - 64)) {
      throw new MCPWebRTCError("chunkSize must be an integer between 1024 and 262080", "config");
    }
    this.onmessage = undefined;
    this.onclose = undefined;
    this.onerror = undefined;
    this.channel = null;
    this._negotiation = new Negotiation({
      signaling: this.signaling,
      initiator: this.initiator,
      options: this.options,
      end: (connectError, error) => {
        this._failConnect?.(connectError);
        this._finish(error);
      },
    });
    this._sender = new ChannelSender(this.options);
    this._decoder = new FrameDecoder(this.options.maxMessageSize);
    this._closed = false;
    this._usable = null; // settles once the channel is open and a probe has left (_probe)
    this._probed = false;
    this._wasOpen = false;
  }

  /** The RTCPeerConnection, once there is one (null before). */
  get pc() { return this._negotiation.pc; }

  /** What the peer's description says (parseCapabilities); null before it arrives. */
  get remote() { return this._negotiation.remote; }

  /** The public key line the peer proved (§8); null when it proved none. */
  get peerKey() { return this._negotiation.peerKey; }

  /** Connects: resolves once the data channel is open, or (awaitChannel false) once the
   * offer is out or awaited. Rejects with an MCPWebRTCError naming the cause. */
  async start() {
    let setUp;
    const started = new Promise((resolve) => {
      setUp = resolve;
    });
    const connected = this._connect(setUp);
    connected.catch(() => {}); // observed by start(), else by onerror and waiting sends
    await (this.awaitChannel ? connected : Promise.race([started, connected]));
  }

  async _connect(setUp) {
    const signaling = this.signaling;
    let settle;
    const opened = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    // observed through usable, below and by send(); never an unhandled rejection
    opened.then(() => { this._wasOpen = true; }, () => {});
    const usable = opened.then(() => this._probe());
    this._usable = usable;
    usable.then(() => { this._probed = true; }, () => {});
    const fail = (error) => settle.reject(error);
    let handedBack = false;
    this._failConnect = fail;
    const timer = setTimeout(
      () => fail(new MCPWebRTCError(`no connection after ${this.options.connectTimeout} ms (${this._negotiation.stage()})`, "connect-timeout")),
      this.options.connectTimeout,
    );
    signaling.onsignal = (signal) => this._negotiation.onSignal(signal).catch((error) => this._report(error));
    signaling.onclose = (error) => {
      if (!this.channel || this.channel.readyState !== "open") {
        fail(error || new MCPWebRTCError("signaling closed before the connection was up", "signaling-closed"));
      }
    };
    try {
      // the connect timeout also bounds a rendezvous that accepts but never answers
      await Promise.race([signaling.connect?.(), opened]);
      const pc = this._negotiation.createPeerConnection();
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") {
          fail(new MCPWebRTCError("ICE/DTLS connection failed", "ice-failed"));
          this._finish(new MCPWebRTCError("connection failed", "ice-failed"));
        }
      };
      const attach = (channel) => {
        this.channel = channel;
        channel.binaryType = "arraybuffer";
        this._sender.attach(channel);
        channel.onmessage = (event) => this._onData(event.data);
        channel.onclose = () => this._finish(null);
        channel.onopen = () => { debug("channel open", channel.label, channel.id); settle.resolve(); };
        if (channel.readyState === "open") settle.resolve();
      };
      if (this.initiator) {
        attach(this._negotiation.createChannel());
        await this._negotiation.offer();
      } else {
        pc.ondatachannel = (event) => {
          debug("data channel from the peer", event.channel.label, event.channel.id, event.channel.readyState);
          attach(event.channel);
        };
      }
      this._negotiation.replayEarly((error) => this._report(error));
      handedBack = true;
      setUp();
      await usable;
    } catch (error) {
      clearTimeout(timer);
      if (handedBack && !this._closed) this._report(error); // start() has returned: say why here
      await this.close();
      throw error;
    }
    clearTimeout(timer);
  }

  /** Chromium can lose what a page sends in a data channel's first moments: the send is
   * counted in bufferedAmount and never leaves, while later sends go (about one connect in
   * 120 on a loaded machine lost the page's initialize; docs/browser.md). Its first sends
   * also stay counted in bufferedAmount until a later one goes. So before the first
   * message, send two frames the peer ignores (ABORT for message id 0, never in use
   * then; docs/protocol.md section 5), then one more each PROBE_WAIT_MS until
   * bufferedAmount is back at 0: a send has then left. Only towards a peer that reads
   * frames (its capability line), and where bufferedAmount is the browser's (the channel
   * fires bufferedamountlow; Node's wrtc does not). */
  async _probe() {
    const channel = this.channel;
    if (!this.remote?.chunking || !this._sender.drainEvents) return;
    const threshold = channel.bufferedAmountLowThreshold;
    channel.bufferedAmountLowThreshold = 0;
    try {
      channel.send(abortFrame(0));
      for (let attempt = 1; attempt <= PROBE_ATTEMPTS && channel.readyState === "open"; attempt++) {
        channel.send(abortFrame(0));
        await new Promise((resolve) => {
          const done = () => {
            clearTimeout(timer);
            channel.removeEventListener("bufferedamountlow", done);
            resolve();
          };
          const timer = setTimeout(done, PROBE_WAIT_MS);
          channel.addEventListener("bufferedamountlow", done);
          if (channel.bufferedAmount === 0) done();
        });
        if (channel.bufferedAmount === 0) return;
        debug("no probe has left the data channel yet:", attempt, "of", PROBE_ATTEMPTS);
      }
    } finally {
      channel.bufferedAmountLowThreshold = threshold;
    }
  }

  /** A message's data from the channel: reassembled, parsed and passed on; bad input gets
   * a JSON-RPC error answer (docs/protocol.md §5) and is reported. */
  _onData(data) {
    debug("received", typeof data === "string" ? data.length : data.byteLength, "bytes");
    let payload;
    try {
      payload = this._decoder.feed(data);
    } catch (error) {
      if (error instanceof OversizeMessage) {
        const id = sniffRequestId(error.head);
        this._sender.sendRaw(errorResponse(id, MESSAGE_TOO_LARGE, `Message too large: ${error.size} bytes, the limit is ${error.limit} bytes`, { size: error.size, limit: error.limit }));
      } else {
        this._sender.sendRaw(errorResponse(null, PARSE_ERROR, `Parse error: ${error.message}`));
      }
      this._report(error);
      return;
    }
    if (payload === null) return;
    let message;
    try {
      message = JSON.parse(typeof payload === "string" ? payload : decoder.decode(payload));
    } catch (error) {
      this._sender.sendRaw(errorResponse(null, PARSE_ERROR, "Parse error"));
      this._report(new MCPWebRTCError("peer sent invalid JSON", "parse-error"));
      return;
    }
    this.onmessage?.(message);
  }

  _report(error) {
    if (this.onerror) this.onerror(error);
    else console.warn("mcp-webrtc:", error);
  }

  /** Send one JSON-RPC message (an object). Rejects with code "too-large" or "peer-gone". */
  async send(message) {
    debug("sending", message.method ?? `answer ${message.id}`);
    // start() may have returned before the channel was usable (awaitChannel false): wait
    if (this._usable && !this._closed && !this._probed) await this._usable;
    if (!this.channel || this.channel.readyState !== "open") throw new MCPWebRTCError("not connected", "peer-gone");
    await this._sender.send(message, this.remote);
  }

  /** Whether the connection has ended (closed here, by the peer, or failed). */
  get closed() {
    return this._closed;
  }

  /** Selected candidate pair types and addresses, protocol, RTT (seconds) and byte counts (from getStats). */
  connectionInfo() {
    return connectionInfo(this.pc);
  }

  _finish(error) {
    if (this._closed) return;
    this._closed = true;
    // sends still waiting for the channel fail with the cause (a no-op once it was open)
    this._failConnect?.(error ?? new MCPWebRTCError("the connection closed before it was up", "peer-gone"));
    this._sender.wake();
    // the peer left (or the path died): release the connection and the signaling too
    this.channel?.close();
    this.pc?.close();
    this.signaling.close?.();
    if (error) this._report(error);
    if (this.awaitChannel || this._wasOpen) this.onclose?.();
    // The SDK fails its pending requests with "Connection closed" in onclose: a send that
    // waited for a channel that never opened first rejects with the cause, then onclose.
    else setTimeout(() => this.onclose?.(), 0);
  }

  async close() {
    if (!this._closed) {
      try {
        this.signaling.send({ type: "bye" });
      } catch (error) {
        // the signaling may be gone already; leaving anyway
      }
    }
    this._finish(null);
  }
}

// ----------------------------------------- the seed's transports (mcp-webrtc 0.1.0 on npm)

/**
 * @typedef {object} WebRTCTransportOptions the seed's constructor argument
 * @property {BaseSignaling | object} signaling a BaseSignaling, or one of ours
 * @property {object} [peerOptions] simple-peer's options: `wrtc`, `config` and
 *   `channelName` are honoured (see fromPeerOptions), `initiator` is set by the class
 * @property {object} [options] this module's options (DEFAULTS), e.g. `maxMessageSize`,
 *   `connectTimeout`, `identity`
 */

/** The MCP client's end, as in the seed: answers the server's offer. start() returns before
 * the data channel is open; send() waits for it. */
export class WebRTCClientTransport extends WebRTCTransport {
  /** @param {WebRTCTransportOptions} options */
  constructor({ signaling, peerOptions, options }) {
    super({ signaling, peerOptions: { ...peerOptions, initiator: false }, options, awaitChannel: false });
  }
}

/** The MCP server's end, as in the seed: makes the offer and opens the data channel.
 * start() returns once the offer is out; send() waits for the channel. */
export class WebRTCServerTransport extends WebRTCTransport {
  /** @param {WebRTCTransportOptions} options */
  constructor({ signaling, peerOptions, options }) {
    super({ signaling, peerOptions: { ...peerOptions, initiator: true }, options, awaitChannel: false });
  }
}
