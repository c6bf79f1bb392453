// options.js: this module's version and options, and the seed's peerOptions mapped onto them.

/** This module's version: the Python package's (a test keeps the two equal). */
export const VERSION = "0.2.0";

const MiB = 1024 * 1024;

export const DEFAULTS = Object.freeze({
  iceServers: [],
  connectTimeout: 20000,
  maxMessageSize: 128 * MiB,
  chunkSize: 64 * 1024,
  highWatermark: 128 * 1024,
  lowWatermark: 32 * 1024,
  channelLabel: null,
  // where RTCPeerConnection comes from: an object holding one (Node: @roamhq/wrtc's
  // default export); null: the runtime's own (globalThis.RTCPeerConnection)
  wrtc: null,
  // further RTCConfiguration fields (iceTransportPolicy, certificates...); the ICE servers
  // are `iceServers` above, plus those the rendezvous hands out
  rtcConfiguration: null,
  // this side's identity (generateIdentity()): signs our descriptions (§8)
  identity: null,
  // public key lines of which the peer must prove one; empty: any peer
  expectPeerKeys: [],
});

/** Our options from the seed's `peerOptions` (simple-peer's): `wrtc`, `config` (an
 * RTCConfiguration whose iceServers are used as given: none when it has none, never
 * simple-peer's public STUN default) and `channelName`. The others (trickle, offerOptions,
 * sdpTransform, streams...) do not apply here and are ignored. */
export function fromPeerOptions({ wrtc, config, channelName } = {}) {
  const options = {};
  if (wrtc) options.wrtc = wrtc;
  if (config) {
    const { iceServers, ...rest } = config;
    options.rtcConfiguration = rest;
    if (iceServers) options.iceServers = iceServers;
  }
  if (channelName) options.channelLabel = channelName;
  return options;
}
