// stats.js: the path a peer connection took, from its getStats().

/** Selected candidate pair types and addresses, protocol, RTT (seconds) and byte counts of `pc`
 * (null: not connected yet), and its connection state. */
export async function connectionInfo(pc) {
  const info = { localCandidateType: null, remoteCandidateType: null, localAddress: null, remoteAddress: null, protocol: null, rtt: null, bytesSent: 0, bytesReceived: 0, state: pc?.connectionState ?? "new" };
  if (!pc) return info;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) pair = stats.get(report.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((report) => {
      if (report.type === "candidate-pair" && report.state === "succeeded" && (report.nominated || !pair)) pair = report;
    });
  }
  if (pair) {
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    info.localCandidateType = local?.candidateType ?? null;
    info.remoteCandidateType = remote?.candidateType ?? null;
    const where = (c) => { const ip = c.address ?? c.ip; return `${ip?.includes(":") ? `[${ip}]` : ip}:${c.port}`; };
    info.localAddress = local ? where(local) : null;
    info.remoteAddress = remote ? where(remote) : null;
    info.protocol = local?.protocol ?? null;
    info.rtt = pair.currentRoundTripTime ?? null;
    info.bytesSent = pair.bytesSent ?? 0;
    info.bytesReceived = pair.bytesReceived ?? 0;
  }
  return info;
}
