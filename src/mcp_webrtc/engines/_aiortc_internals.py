"""The one place that touches aiortc/aioice internals.

Eight needs have no public aiortc API: restricting ICE host candidates to an allow-list,
reading the selected candidate pair, enlarging its socket's receive buffer, sending an
ICE consent check (a STUN binding request, RFC 7675) on demand to learn whether the peer
is still there, noting when its packets arrive, pausing the receive path while the reader
is behind, and not leaking
aioice's consent task or its sockets when a connection closes mid-connect. Each accessor checks
that the private attribute it needs exists and raises :class:`ConfigurationError` naming
the installed versions when an aiortc/aioice upgrade moved it, rather than misbehaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aioice.ice
import aioice.stun

from ..exceptions import ConfigurationError
from .base import Endpoint

_host_filter: contextvars.ContextVar[Callable[[str], bool] | None] = contextvars.ContextVar(
    "mcp_webrtc_host_filter", default=None
)
_original_get_host_addresses: Callable[..., list[str]] | None = None
_filters_active = 0  # blocks inside host_candidate_filter; the patch lives while > 0


def _versions() -> str:
    import aiortc

    return f"aiortc {getattr(aiortc, '__version__', '?')}, aioice {aioice.__version__}"


def _internals_changed(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"mcp-webrtc cannot use {what} with {_versions()}: the private attribute it relies "
        "on has changed. Pin the aiortc/aioice versions listed in mcp-webrtc's requirements."
    )


def _install_host_filter() -> None:
    global _original_get_host_addresses
    if _original_get_host_addresses is not None:
        return
    original = getattr(aioice.ice, "get_host_addresses", None)
    if original is None or not callable(original):
        raise _internals_changed("host_candidates (aioice.ice.get_host_addresses)")

    def filtered(*args: Any, **kwargs: Any) -> list[str]:
        addresses: list[str] = original(*args, **kwargs)
        keep = _host_filter.get()
        return addresses if keep is None else [a for a in addresses if keep(a)]

    _original_get_host_addresses = original
    aioice.ice.get_host_addresses = filtered


def _remove_host_filter() -> None:
    global _original_get_host_addresses
    if _original_get_host_addresses is not None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        _original_get_host_addresses = None


@contextlib.contextmanager
def host_candidate_filter(keep: Callable[[str], bool] | None) -> Iterator[None]:
    """Within this block (and tasks it starts), gather only host candidates on addresses
    ``keep`` accepts."""
    if keep is None:
        yield
        return
    global _filters_active
    _install_host_filter()
    _filters_active += 1
    token = _host_filter.set(keep)
    try:
        yield
    finally:
        _host_filter.reset(token)
        _filters_active -= 1
        if _filters_active == 0:  # aioice is left as it was found
            _remove_host_filter()


def _connection(pc: Any) -> Any | None:
    sctp = getattr(pc, "sctp", None)
    if sctp is None:
        return None
    try:
        return sctp.transport.transport._connection
    except AttributeError:
        raise _internals_changed("connection info (RTCIceTransport._connection)") from None


def selected_pair(pc: Any) -> tuple[Endpoint, Endpoint] | None:
    """The nominated (local, remote) candidate pair, or ``None`` before nomination."""
    conn = _connection(pc)
    if conn is None:
        return None
    nominated = getattr(conn, "_nominated", None)
    if nominated is None:
        raise _internals_changed("connection info (aioice Connection._nominated)")
    pair = nominated.get(1)
    if pair is None:
        return None
    local, remote = pair.local_candidate, pair.remote_candidate
    return (
        Endpoint(local.type, local.host, local.port, local.transport),
        Endpoint(remote.type, remote.host, remote.port, remote.transport),
    )


def set_receive_buffer(pc: Any, size: int) -> int | None:
    """Enlarge the kernel receive buffer of the selected pair's UDP socket.

    aioice asks for 256 KiB; under load the kernel then drops datagrams and SCTP stalls for
    a retransmission timeout (about 1 s). Returns the size the kernel granted (Linux reports
    twice the request, capped by ``net.core.rmem_max``), or ``None`` when there is no
    socket to tune (before nomination, or a TCP/TLS TURN connection).
    """
    conn = _connection(pc)
    pair = None if conn is None else getattr(conn, "_nominated", {}).get(1)
    transport = getattr(getattr(pair, "protocol", None), "transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_DGRAM:
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        granted: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    except OSError:
        return None
    return granted


async def consent_check(pc: Any) -> float | None:
    """Send one ICE consent check on the nominated pair; return its round trip in seconds.

    Returns ``None`` when there is no nominated pair or no answer came (aioice gives up
    after one retransmission timeout, 0.5 s). Every ICE agent answers these, browsers and
    the seed included, so this never disturbs the peer.
    """
    conn = _connection(pc)
    if conn is None:
        return None
    nominated = getattr(conn, "_nominated", None)
    build = getattr(conn, "build_request", None)
    password = getattr(conn, "remote_password", None)
    if nominated is None or build is None:
        raise _internals_changed("dead-peer detection (aioice Connection.build_request)")
    pair = nominated.get(1)
    if pair is None or password is None:
        return None
    request = build(pair, nominate=False)
    started = time.monotonic()
    try:
        await pair.protocol.request(
            request,
            pair.remote_addr,
            integrity_key=password.encode("utf8"),
            retransmissions=0,
        )
    except (aioice.stun.TransactionError, ConnectionError, OSError):
        return None
    return time.monotonic() - started


def note_arrivals(pc: Any) -> Callable[[], float]:
    """Note when each packet other than STUN arrives from the peer (DTLS records: its data
    and its SCTP acknowledgements); return a function giving the time of the last one
    (``0.0`` before any).

    A peer busy receiving a large transfer answers consent checks late: its socket buffer
    holds seconds of data ahead of each check. Its acknowledgements keep arriving
    meanwhile and prove it alive. Call once the peer connection has its transports.
    """
    last = [0.0]
    conn = _connection(pc)
    original = getattr(conn, "data_received", None)
    if conn is None or original is None or not callable(original):
        raise _internals_changed("dead-peer detection (aioice Connection.data_received)")

    def data_received(data: bytes, component: int) -> None:
        last[0] = time.monotonic()
        original(data, component)

    conn.data_received = data_received
    return lambda: last[0]


def gate_receive(pc: Any, wait: Callable[[], Awaitable[None]]) -> None:
    """After each message the SCTP association delivers, await ``wait()`` before it reads
    the next packet: while the reader is behind, this side sends no SACKs, so the sender's
    congestion window closes and data waits on its side (aiortc ignores the receive
    window a SACK advertises, so that alone would not hold it back). STUN (consent
    checks) is answered by aioice beside this path, so the peer still looks alive.
    """
    sctp = getattr(pc, "sctp", None)
    original = getattr(sctp, "_receive", None)
    if sctp is None or original is None or not callable(original):
        raise _internals_changed("receive backpressure (RTCSctpTransport._receive)")

    async def gated(stream_id: int, pp_id: int, data: bytes) -> None:
        await original(stream_id, pp_id, data)
        await wait()

    sctp._receive = gated


def stop_consent_after_close(pc: Any) -> None:
    """Keep aioice from starting its consent task for a connection already closed.

    aioice's ``Connection.connect()`` starts ``query_consent`` once the check list has
    completed; when ``close()`` runs between the two (a peer giving up mid-connect), the
    task starts afterwards, finds no nominated pair and loops forever, one task per
    aborted connect. Call once the peer connection has its transports (after
    ``createDataChannel`` or ``setRemoteDescription``).
    """
    conn = _connection(pc)
    if conn is None:
        return
    original = getattr(conn, "query_consent", None)
    if original is None or not hasattr(conn, "_closing"):
        raise _internals_changed("cleanup on close (aioice Connection._closing)")

    async def query_consent() -> None:
        if not conn._closing:
            await original()

    conn.query_consent = query_consent


_late_closes: set[asyncio.Task[None]] = set()  # referenced until done


def close_again_after(pc: Any, gathering: asyncio.Future[Any]) -> None:
    """Close the ICE connection of ``pc`` again once ``gathering`` ends.

    aioice's ``Connection.close()`` closes the sockets it holds at that moment; a
    gathering still under way (a connect given up while candidates were being gathered,
    frequent on a busy host) opens its sockets afterwards and they stay open for good.
    Closing again once gathering is over closes them. Call before ``pc.close()``.
    """
    conn = _connection(pc)
    if conn is None:
        return

    def gathered(_: object) -> None:
        task = asyncio.ensure_future(conn.close())
        _late_closes.add(task)
        task.add_done_callback(_late_closes.discard)

    gathering.add_done_callback(gathered)
