"""Identity keys and the files that hold them: this side's private key, the servers a
client has seen (trust on first use) and the clients a server accepts.

The wire side (signing and checking descriptions) is pure and lives in
:mod:`mcp_webrtc._core.identity`; this module only reads and writes files::

    identity = load_identity()                    # ~/.config/mcp-webrtc/identity.pem
    options = WebRTCOptions(identity=identity, expect_peer_keys=(server_key_line,))
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import platformdirs

from ._core.identity import KEY_TYPE, Identity, PublicKey
from .exceptions import ConfigurationError

__all__ = [
    "KEYS_ONLY_TOKEN",
    "Identity",
    "KnownServers",
    "PublicKey",
    "config_dir",
    "load_identity",
    "write_identity",
]


#: The client token of a room whose server admits clients by key alone (``serve
#: --authorized-keys`` without ``--client-token``); ``connect`` sends it when given none.
#: Not a secret: anyone may join such a room, and only listed keys connect.
KEYS_ONLY_TOKEN = "mcp-webrtc-keys-only"


def config_dir() -> Path:
    """The user's mcp-webrtc configuration directory (``$XDG_CONFIG_HOME/mcp-webrtc``...)."""
    return Path(platformdirs.user_config_dir("mcp-webrtc", appauthor=False))


def default_identity_path() -> Path:
    return config_dir() / "identity.pem"


def load_identity(path: str | Path | None = None) -> Identity | None:
    """The identity key at ``path``; without a path, the default one if it exists (else
    ``None``). A named file that is missing or unreadable is a :class:`ConfigurationError`."""
    if path is None:
        path = default_identity_path()
        if not path.exists():
            return None
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the identity key {path}: {exc.strerror}") from None
    comment = ""
    with contextlib.suppress(OSError, ConfigurationError):  # the comment is a nicety
        comment = PublicKey.parse(public_key_path(path).read_text()).comment
    return Identity.from_pem(data, comment)


def public_key_path(path: Path) -> Path:
    """Where the public key line of the private key at ``path`` is kept (``<path>.pub``)."""
    return path.with_name(path.name + ".pub")


def write_identity(identity: Identity, path: str | Path, *, force: bool = False) -> Path:
    """Write ``identity``'s private key to ``path`` (mode 0600, directories 0700) and its
    public key line to ``<path>.pub``, refusing to replace an existing key unless
    ``force``; returns the path."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists: pass --force to replace it") from None
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(identity.to_pem())
    public_key_path(path).write_text(identity.public.line + "\n")
    return path


class KnownServers:
    """The servers a client has connected to, one line each: ``<rendezvous URL> <room>
    <public key line>``, as OpenSSH's ``known_hosts``. The first connection to a room
    records its key; a later one must present the same key."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / "known_servers"

    def _entries(self) -> list[tuple[str, str, PublicKey]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3 or not parts[2].startswith(KEY_TYPE):
                raise ConfigurationError(f"{self.path}:{number}: not '<url> <room> <key>'")
            entries.append((parts[0], parts[1], PublicKey.parse(parts[2])))
        return entries

    def lookup(self, url: str, room: str) -> PublicKey | None:
        for known_url, known_room, key in self._entries():
            if (known_url, known_room) == (url, room):
                return key
        return None

    def record(self, url: str, room: str, key: PublicKey) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(f"{url} {room} {key.line}\n")

    def forget(self, url: str, room: str) -> bool:
        """Remove the entry for ``(url, room)``; whether there was one."""
        with contextlib.suppress(FileNotFoundError):
            lines = self.path.read_text().splitlines(keepends=True)
            kept = [line for line in lines if line.split(None, 2)[:2] != [url, room]]
            if len(kept) != len(lines):
                self.path.write_text("".join(kept))
                return True
        return False
