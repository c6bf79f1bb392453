"""Small, pure SDP helpers: read limits and candidates, and carry the framing capability.

The capability line ``a=x-mcp-webrtc:1;max-message-size=<bytes>[;compression=deflate-raw]``
is added at session level
to the SDP that we *signal* (never to the description given to the local peer connection).
A peer whose SDP has it reassembles chunk frames and accepts messages up to the size it
names; a peer without it (the TypeScript seed, simple-peer, a plain browser page) receives
only whole messages of at most its SCTP ``a=max-message-size``. See docs/protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

CAPABILITY_ATTRIBUTE = "x-mcp-webrtc"
FRAMING_VERSION = 1
#: RFC 8841: when a description carries no max-message-size, assume 64 KiB.
DEFAULT_SCTP_MAX_MESSAGE_SIZE = 65536
#: Sizes a peer may announce: outside this range the attribute or field is ignored.
MIN_ANNOUNCED_SIZE = 1024
MAX_ANNOUNCED_SIZE = 2**53
_DIGITS = re.compile(r"[0-9]{1,16}")  # ASCII only: isdigit() and int() take other digits


@dataclass(frozen=True, slots=True)
class RemoteCapabilities:
    """What a remote SDP tells about the peer's receiving side."""

    #: The SCTP max-message-size (``0`` = no limit, per RFC 8841).
    sctp_max_message_size: int
    #: Framing version from the capability line, or ``None`` for a plain peer.
    framing_version: int | None
    #: The largest reassembled message the peer accepts (capability line), if announced.
    max_message_size: int | None
    #: Whether the peer inflates FIRST_DEFLATE messages (``compression=deflate-raw``).
    deflate: bool = False
    #: What was ignored as malformed, one short note each (for a log line).
    ignored: tuple[str, ...] = ()

    @property
    def chunking(self) -> bool:
        return self.framing_version is not None and self.framing_version >= 1


def _attributes(sdp: str) -> list[tuple[str, str]]:
    out = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            out.append((name, value))
    return out


def _size(text: str, *, zero_ok: bool = False) -> int | None:
    """An announced size in bytes, or ``None`` when malformed or out of range."""
    text = text.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    if zero_ok and value == 0:
        return 0
    return value if MIN_ANNOUNCED_SIZE <= value <= MAX_ANNOUNCED_SIZE else None


def _note(name: str, value: str) -> str:
    return f"a={name}:{value[:40]}" + ("..." if len(value) > 40 else "")


def drop_bad_size_lines(sdp: str) -> str:
    """``sdp`` without ``a=max-message-size`` lines that are malformed or out of range, so
    that an engine given the description ignores them as :func:`parse_capabilities` does."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    kept = [
        line
        for line in lines
        if not line.strip().startswith("a=max-message-size:")
        or _size(line.strip()[19:], zero_ok=True) is not None
    ]
    return sdp if len(kept) == len(lines) else eol.join(kept)


def parse_capabilities(sdp: str) -> RemoteCapabilities:
    """Read the peer's limits. Never raises: what cannot be understood is ignored and
    named in :attr:`RemoteCapabilities.ignored`."""
    sctp_max = DEFAULT_SCTP_MAX_MESSAGE_SIZE
    version: int | None = None
    max_size: int | None = None
    deflate = False
    ignored: list[str] = []
    for name, value in _attributes(sdp):
        if name == "max-message-size":
            size = _size(value, zero_ok=True)
            if size is None:
                ignored.append(_note(name, value))
            else:
                sctp_max = size
        elif name == CAPABILITY_ATTRIBUTE:
            fields = value.split(";")
            if not _DIGITS.fullmatch(fields[0].strip()):
                ignored.append(_note(name, value))
                continue
            version = int(fields[0])
            for item in fields[1:]:
                key, _, val = (part.strip() for part in item.partition("="))
                if key == "max-message-size":
                    max_size = _size(val)
                    if max_size is None:
                        ignored.append(_note(name, value))
                elif key == "compression":
                    deflate = "deflate-raw" in val.split(",")
    return RemoteCapabilities(sctp_max, version, max_size, deflate, tuple(ignored))


def capability_line(max_message_size: int, *, deflate: bool) -> str:
    line = f"a={CAPABILITY_ATTRIBUTE}:{FRAMING_VERSION};max-message-size={max_message_size}"
    return line + (";compression=deflate-raw" if deflate else "")


def add_capability(sdp: str, max_message_size: int, *, deflate: bool = True) -> str:
    """Return ``sdp`` with our capability line after the session's ``t=`` line."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    line = capability_line(max_message_size, deflate=deflate)
    lines = sdp.split(eol)
    for index, text in enumerate(lines):
        if text.startswith("t="):
            lines.insert(index + 1, line)
            return eol.join(lines)
    raise ValueError("SDP has no t= line")


def host_address(candidate: str) -> str | None:
    """The address of a host candidate (``candidate:...`` or ``a=candidate:...``), or
    ``None`` for other candidate types and for what cannot be read."""
    fields = candidate.strip().removeprefix("a=").removeprefix("candidate:").split()
    if len(fields) < 8 or fields[6] != "typ" or fields[7] != "host":
        return None
    return fields[4]


def keep_candidates(sdp: str, keep: Callable[[str], bool]) -> str:
    """``sdp`` without the host candidates whose address ``keep`` refuses."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    kept = [line for line in lines if candidate_allowed(line, keep)]
    return sdp if len(kept) == len(lines) else eol.join(kept)


def candidate_allowed(line: str, keep: Callable[[str], bool]) -> bool:
    """Whether a candidate (or any other SDP line) may be signaled under ``keep``."""
    if "candidate:" not in line:
        return True
    address = host_address(line)
    return address is None or keep(address)


def count_candidates(sdp: str) -> int:
    return sum(1 for name, _ in _attributes(sdp) if name == "candidate")
