"""Peer identity (docs/protocol.md §8): signed descriptions, pinned and recorded server
keys, authorized client keys, and a man in the middle built from the library itself."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_webrtc import ConnectError, ConnectionInfo, PeerIdentityError
from mcp_webrtc._core.identity import (
    Identity,
    PublicKey,
    fingerprints,
    sign_description,
    signed_message,
    verify_description,
)
from mcp_webrtc.bridges import bridge
from mcp_webrtc.serve import connect

from . import support
from .support import mcp_client, options, rendezvous, serving, text_of
from .test_protocol_spec import VECTORS

ROOT = Path(__file__).resolve().parent.parent
HOST, CLIENT = "id-host", "id-client"
IDENTITY_VECTORS = [v for v in VECTORS if v["kind"] == "identity"]


def unsigned(sdp: str) -> str:
    """``sdp`` without the identity fields of its capability line."""
    head, sep, rest = sdp.partition(";identity=")
    return head + rest[rest.index("\r\n") :] if sep else sdp


# ------------------------------------------------------------------ the spec's vectors


@pytest.mark.parametrize("vector", IDENTITY_VECTORS, ids=lambda v: v.get("why", v["type"]))
def test_identity_vectors(vector: dict[str, Any]) -> None:
    kind, sdp, offer = vector["type"], vector["sdp"], vector.get("offer")
    expected = PublicKey.parse(vector["key"])
    if not vector["valid"]:
        with pytest.raises(PeerIdentityError):
            verify_description(kind, sdp, offer)
        return
    assert verify_description(kind, sdp, offer) == expected
    assert expected.fingerprint == vector["fingerprint"]
    signer = Identity(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed"])))
    assert signer.public == expected
    assert sign_description(signer, kind, unsigned(sdp), offer) == sdp
    if "message" in vector:
        fields = "1;max-message-size=134217728;compression=deflate-raw"
        built = signed_message(kind, fields, fingerprints(sdp), [], expected)
        assert built.decode() == vector["message"]


def test_the_vectors_cover_every_refusal() -> None:
    whys = {v.get("why") for v in IDENTITY_VECTORS if not v["valid"]}
    assert len(whys) >= 4, whys


def test_public_key_lines_are_checked() -> None:
    key = Identity.generate("me@here").public
    assert PublicKey.parse(key.line) == key
    assert PublicKey.parse(key.line).comment == "me@here"
    for bad in ("ssh-ed25519 AAAA", "mcp-webrtc-ed25519 !!!", "mcp-webrtc-ed25519 AAAA"):
        with pytest.raises(Exception, match="key"):
            PublicKey.parse(bad)


# ------------------------------------------------------------------ over real connections


def info_of(transport: Any) -> ConnectionInfo:
    info: ConnectionInfo = transport.connection_info()
    return info


@pytest.mark.anyio
async def test_a_pinned_server_key_connects_and_names_the_peer(engine: str) -> None:
    server_id, client_id = Identity.generate(), Identity.generate()
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, options=options(identity=server_id)),
    ):
        pinned = options(identity=client_id, expect_peer_keys=(server_id.public.line,))
        transport = connect(server.url, room="lab", token=CLIENT, options=pinned)
        async with mcp_client(transport) as session:
            assert text_of(await session.call_tool("greet", {"name": "k"})) == "Hello, k!"
            assert info_of(transport).peer_key == server_id.public.line


@asynccontextmanager
async def man_in_the_middle(url: str, real_room: str) -> AsyncIterator[list[str]]:
    """A host that registered room "lab" (it holds a host token) and bridges every client
    to the real server in ``real_room``: it reads and could change every message. Yields
    the methods it saw."""
    seen: list[str] = []

    async def relay(read: Any, write: Any) -> None:
        upstream = connect(url, room=real_room, token=CLIENT, options=options())
        async with upstream as (up_read, up_write):

            async def spy() -> AsyncIterator[Any]:
                async for item in read:
                    message = getattr(item.message, "root", item.message)  # mcp 1.x wraps
                    seen.append(getattr(message, "method", "answer"))
                    yield item

            await bridge((spy(), write), (up_read, up_write))

    mitm_identity = Identity.generate("mallory")
    async with serving(url, HOST, CLIENT, relay, options=options(identity=mitm_identity)):
        yield seen


@pytest.mark.anyio
async def test_a_man_in_the_middle_is_refused_when_the_server_key_is_pinned(engine: str) -> None:
    server_id = Identity.generate()
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, room="real", options=options(identity=server_id)),
        man_in_the_middle(server.url, "real") as seen,
    ):
        # unpinned, the client talks to the real server through the middle, unaware
        transport = connect(server.url, room="lab", token=CLIENT, options=options())
        async with mcp_client(transport) as session:
            assert text_of(await session.call_tool("greet", {"name": "m"})) == "Hello, m!"
        assert "tools/call" in seen
        # pinned: refused before any MCP message is sent
        before = len(seen)
        pinned = options(expect_peer_keys=(server_id.public.line,))
        transport = connect(server.url, room="lab", token=CLIENT, options=pinned)
        with pytest.raises(PeerIdentityError, match="not the expected"):
            async with transport:
                pass
        assert len(seen) == before


@pytest.mark.anyio
async def test_an_unlisted_client_key_never_reaches_the_server(engine: str) -> None:
    alice, mallory = Identity.generate("alice"), Identity.generate("mallory")
    reached: list[str] = []

    async def handler(read: Any, write: Any) -> None:
        reached.append("session")
        async for _ in read:
            pass

    served = options(identity=Identity.generate(), expect_peer_keys=(alice.public.line,))
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, handler, options=served),
    ):
        for who in (mallory, None):
            transport = connect(server.url, room="lab", token=CLIENT, options=options(identity=who))
            with pytest.raises(ConnectError, match="identity could not be verified"):
                async with transport:  # the server says bye, naming the reason
                    await anyio.sleep(5)  # not reached: refused while connecting
        assert reached == []
        transport = connect(server.url, room="lab", token=CLIENT, options=options(identity=alice))
        async with transport:
            await support.wait_until(lambda: reached == ["session"])


# ------------------------------------------------------------------ the command line


def mcp_webrtc(
    *args: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_webrtc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    done = mcp_webrtc("keygen", "--comment", "me@laptop", env=env)
    assert done.returncode == 0, done.stderr
    key = PublicKey.parse(done.stdout)
    assert key.comment == "me@laptop"
    assert key.fingerprint in done.stderr
    written = tmp_path / "mcp-webrtc" / "identity.pem"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in written.read_text()
    assert PublicKey.parse((tmp_path / "mcp-webrtc" / "identity.pem.pub").read_text()) == key
    again = mcp_webrtc("keygen", env=env)
    assert again.returncode != 0
    assert "--force" in again.stderr


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


@pytest.mark.anyio
async def test_connect_records_the_server_key_and_refuses_a_changed_one(tmp_path: Path) -> None:
    """Trust on first use, as SSH: the first connection records the key; a different key
    for the same rendezvous and room is refused, naming both fingerprints and the cure."""
    first, second = Identity.generate("first"), Identity.generate("second")
    known = tmp_path / "known_servers"
    env = {**os.environ, "MCP_WEBRTC_ENGINE": support.ENGINE}
    connect_args = ["connect", "--room", "lab", "--token", CLIENT]
    connect_args += ["--host-candidates", "loopback", "--known-servers", str(known)]
    line = json.dumps(INIT) + "\n"
    async with rendezvous(HOST) as server:
        run = [server.url, *connect_args[1:]]
        for identity, refused in ((first, False), (first, False), (second, True)):
            async with serving(server.url, HOST, CLIENT, options=options(identity=identity)):
                done = await anyio.to_thread.run_sync(
                    lambda: mcp_webrtc("connect", *run, env=env, stdin=line)
                )
            answer = json.loads(done.stdout.splitlines()[0])
            if refused:
                assert "error" in answer, answer
                assert first.public.fingerprint in answer["error"]["message"]
                assert second.public.fingerprint in answer["error"]["message"]
                assert "forget-server" in answer["error"]["message"]
            else:
                assert answer["result"]["serverInfo"], answer
        assert known.read_text().count("mcp-webrtc-ed25519") == 1
        forgot = mcp_webrtc(
            "forget-server", server.url, "--room", "lab", "--known-servers", str(known), env=env
        )
        assert forgot.returncode == 0, forgot.stderr
        assert "mcp-webrtc-ed25519" not in known.read_text()


@pytest.mark.anyio
async def test_serve_prints_the_command_that_reaches_it(tmp_path: Path) -> None:
    """The invitation `serve` prints at start works as printed (with the client token
    put in a file), pins the server's key, and never shows the client token."""
    import shlex

    from anyio.streams.buffered import BufferedByteReceiveStream

    from mcp_webrtc.identity import write_identity

    identity = Identity.generate("laptop")
    key_file = write_identity(identity, tmp_path / "server.pem")
    token_file = tmp_path / "client.token"
    token_file.write_text(CLIENT + "\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    async with rendezvous(HOST) as server:
        args = support.serve_args(server.url, HOST, CLIENT, "--identity", str(key_file))
        args += ["--app", "tests.app:SERVER"]
        command = [sys.executable, "-m", "mcp_webrtc", *args]
        host = await anyio.open_process(command, cwd=ROOT, env=env)
        try:
            assert host.stderr is not None
            stderr = BufferedByteReceiveStream(host.stderr)

            async def line() -> str:
                return (await stderr.receive_until(b"\n", 65536)).decode()

            with anyio.fail_after(30):
                printed = [await line()]
                while not printed[-1].startswith("  mcp-webrtc connect"):
                    printed.append(await line())
                printed += [await line(), await line()]  # the configuration entry
            assert CLIENT not in "".join(printed)
            assert '"mcpServers"' in printed[-2]
            words = shlex.split(printed[-3])
            pinned = PublicKey.parse(words[words.index("--server-key") + 1])
            assert pinned == identity.public
            assert pinned.comment == "laptop"  # kept beside the key, in server.pem.pub
            words[words.index("CLIENT_TOKEN_FILE")] = str(token_file)
            words += ["--host-candidates", "loopback", "--known-servers", str(tmp_path / "k")]
            await support.wait_registered(server)
            done = await anyio.to_thread.run_sync(
                lambda: mcp_webrtc(*words[1:], env=env, stdin=json.dumps(INIT) + "\n")
            )
        finally:
            host.kill()
            await host.aclose()
        answer = json.loads(done.stdout.splitlines()[0])
        assert answer["result"]["serverInfo"], (answer, done.stderr)


@pytest.mark.anyio
async def test_with_authorized_keys_the_client_token_is_optional(tmp_path: Path) -> None:
    """Keys alone admit clients: serve needs no client token, connect sends none, and a
    client without a listed key is still refused."""
    from mcp_webrtc.identity import write_identity

    alice = Identity.generate("alice")
    key_file = write_identity(alice, tmp_path / "alice.pem")
    (tmp_path / "authorized").write_text(alice.public.line + "\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "empty")}
    for name in ("MCP_WEBRTC_CLIENT_TOKEN", "MCP_WEBRTC_TOKEN"):
        env.pop(name, None)
    async with rendezvous(HOST) as server:
        args = ["serve", server.url, "--room", "lab", "--token", HOST, "--engine", support.ENGINE]
        args += ["--authorized-keys", str(tmp_path / "authorized"), "--host-candidates"]
        args += ["loopback", "--app", "tests.app:SERVER"]
        host = await anyio.open_process(
            [sys.executable, "-m", "mcp_webrtc", *args], cwd=ROOT, env=env
        )
        try:
            await support.wait_registered(server)
            base = ["connect", server.url, "--room", "lab", "--host-candidates", "loopback"]
            base += ["--known-servers", str(tmp_path / "known")]
            answers = []
            for extra in (["--identity", str(key_file)], []):
                stdin = json.dumps(INIT) + "\n"
                run = partial(mcp_webrtc, *base, *extra, env=env, stdin=stdin)
                done = await anyio.to_thread.run_sync(run)
                answers.append(json.loads(done.stdout.splitlines()[0]))
        finally:
            host.kill()
            await host.aclose()
    listed, unlisted = answers
    assert listed["result"]["serverInfo"], listed
    assert "identity could not be verified" in unlisted["error"]["message"], unlisted


@pytest.mark.anyio
async def test_a_rendezvous_that_rewrites_the_fingerprint_is_caught(engine: str) -> None:
    """A rendezvous putting its own DTLS fingerprint in the server's signed offer (to sit in
    the middle) breaks the signature: the client refuses, pinned or not."""
    import re

    from mcp_webrtc import MemorySignaling
    from mcp_webrtc.peer import open_peer

    from .support import TapSignaling

    def rewrite(signal: dict[str, Any]) -> list[Any]:
        if signal.get("type") == "offer":
            forged = "a=fingerprint:sha-256 " + ":".join(["5A"] * 32)
            signal = {**signal, "sdp": re.sub(r"a=fingerprint:[^\r\n]*", forged, signal["sdp"])}
        return [signal]

    a, b = MemorySignaling.create_pair()
    server_side = TapSignaling(a, rewrite)
    outcomes: dict[str, BaseException | None] = {}

    async def side(name: str, signaling: Any, opts: Any, initiator: bool) -> None:
        try:
            async with open_peer(signaling, opts, initiator=initiator):
                outcomes[name] = None
        except Exception as exc:
            outcomes[name] = exc

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(side, "server", server_side, options(identity=Identity.generate()), True)
            tg.start_soon(side, "client", b, options(), False)
    assert isinstance(outcomes["client"], PeerIdentityError), outcomes
    assert "altered or forged" in str(outcomes["client"])
