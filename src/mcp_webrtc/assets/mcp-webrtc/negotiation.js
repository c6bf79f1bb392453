// negotiation.js: the offer/answer exchange of one RTCPeerConnection: our capability line
// (docs/protocol.md §3) and signature (§8) on the descriptions we send; the peer's identity
// checked before its description is applied, its capabilities read, candidates trickled both
// ways (those that come early are held until they can be used).

import { addCapability, parseCapabilities } from "./capabilities.js";
import { MCPWebRTCError } from "./errors.js";
import { signDescription, verifyDescription } from "./identity.js";
import { debug } from "./log.js";

function randomLabel() {
  const bytes = new Uint8Array(20);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Negotiation {
  /** `options`: the transport's. `end(connectError, error)`: the peer left or failed to
   * prove its identity: connecting fails with `connectError` and the transport finishes
   * with `error` (null: no error to report). */
  constructor({ signaling, initiator, options, end }) {
    Object.assign(this, { signaling, initiator, options });
    this._end = end;
    this.pc = null;
    this.remote = null; // what the peer's description says (parseCapabilities)
    this._remoteApplied = false;
    this._pending = [];
    this._early = []; // signals that came before the peer connection existed
  }

  /** The peer connection, with our ICE servers and the signaling's; our candidates go out
   * as they are found. Throws (code "config") where the runtime has no RTCPeerConnection. */
  createPeerConnection() {
    const signaling = this.signaling;
    const iceServers = [...this.options.iceServers, ...(signaling.iceServers || [])];
    const PeerConnection = this.options.wrtc?.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (!PeerConnection) {
      throw new MCPWebRTCError("this runtime has no RTCPeerConnection: pass one as the `wrtc` option (in Node, @roamhq/wrtc)", "config");
    }
    const pc = new PeerConnection({ ...this.options.rtcConfiguration, iceServers });
    this.pc = pc;
    pc.onicecandidate = (event) => {
      if (event.candidate) signaling.send({ type: "candidate", candidate: event.candidate.toJSON() });
    };
    return pc;
  }

  /** The initiator's data channel, labelled `channelLabel` or at random. */
  createChannel() {
    return this.pc.createDataChannel(this.options.channelLabel || randomLabel(), { ordered: true });
  }

  /** The initiator's (signed) offer, sent. */
  async offer() {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    this._localSdp = await this._sign("offer", addCapability(pc.localDescription.sdp, this.options.maxMessageSize));
    this.signaling.send({ type: "offer", sdp: this._localSdp });
  }

  /** Handles the signals that came before the peer connection; `report(error)` gets failures. */
  replayEarly(report) {
    for (const signal of this._early.splice(0)) this.onSignal(signal).catch(report);
  }

  /** Where connecting stands, for a connect timeout's message. */
  stage() {
    if (!this.pc) return "signaling did not connect";
    if (!this.remote) return "no offer or answer arrived";
    return `ICE ${this.pc.iceConnectionState}, connection ${this.pc.connectionState}`;
  }

  _sign(kind, sdp, offerSdp = null) {
    return this.options.identity ? signDescription(this.options.identity, kind, sdp, offerSdp) : sdp;
  }

  _checkExpected(key) {
    const expected = (this.options.expectPeerKeys || []).map((line) => line.trim().split(/\s+/)[1]);
    if (!expected.length) return;
    if (!key) throw new MCPWebRTCError("the peer proved no identity; a key was expected", "peer-identity");
    if (!expected.includes(key.split(" ")[1])) {
      throw new MCPWebRTCError(`the peer's key ${key} is not the expected one (another peer, or a man in the middle)`, "peer-identity");
    }
  }

  /** One signal from the peer: its offer or answer, a candidate, or bye. */
  async onSignal(signal) {
    const pc = this.pc;
    debug("signal", signal?.type ?? "candidate", pc ? "" : "(before the peer connection: kept)");
    if (!signal || typeof signal !== "object") return;
    if (!pc) {
      this._early.push(signal); // replayed once the peer connection exists
      return;
    }
    if (signal.type === "offer" || signal.type === "answer") {
      const expected = this.initiator ? "answer" : "offer";
      if (signal.type !== expected || this.remote || typeof signal.sdp !== "string") {
        console.warn("mcp-webrtc: ignoring unexpected", signal.type);
        return;
      }
      try { // an identity that does not verify: the description is never applied
        this.peerKey = await verifyDescription(signal.type, signal.sdp, this.initiator ? this._localSdp : null);
        this._checkExpected(this.peerKey);
      } catch (error) {
        this.signaling.send({ type: "bye", reason: `connect failed: ${error.message}` });
        this._end(error, error);
        return;
      }
      // known before the channel can open: @roamhq/wrtc may open it (and deliver the peer's
      // first request) before setRemoteDescription's promise resolves
      this.remote = parseCapabilities(signal.sdp);
      await pc.setRemoteDescription({ type: signal.type, sdp: signal.sdp });
      this._remoteApplied = true;
      for (const candidate of this._pending.splice(0)) await this._addCandidate(candidate);
      if (!this.initiator) {
        await pc.setLocalDescription(await pc.createAnswer());
        const answer = addCapability(pc.localDescription.sdp, this.options.maxMessageSize);
        this.signaling.send({ type: "answer", sdp: await this._sign("answer", answer, signal.sdp) });
      }
    } else if (signal.type === "candidate" || (!signal.type && signal.candidate)) {
      const candidate = typeof signal.candidate === "string" ? { candidate: signal.candidate, sdpMid: signal.sdpMid, sdpMLineIndex: signal.sdpMLineIndex } : signal.candidate;
      if (!candidate || !candidate.candidate) return;
      if (this._remoteApplied) await this._addCandidate(candidate);
      else this._pending.push(candidate);
    } else if (signal.type === "bye") {
      this._end(new MCPWebRTCError("the peer left before the connection was up", "peer-left"), null);
    } else {
      console.warn("mcp-webrtc: ignoring unknown signal", signal);
    }
  }

  async _addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      console.warn("mcp-webrtc: ignoring unusable candidate", candidate, error);
    }
  }
}
