"""Per-peer policy (authorized keys with tools="...") and the audit log, in the pure gate
and through real peers: an in-process server and a stdio child behind `serve`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_webrtc import ConfigurationError, Identity
from mcp_webrtc._core.policy import NOT_ALLOWED, Gate, Policy
from mcp_webrtc.access import Access
from mcp_webrtc.serve import connect

from .support import MCPError, mcp_client, options, rendezvous, serving, text_of

ROOT = Path(__file__).resolve().parent.parent
HOST, CLIENT = "acl-host", "acl-client"


def request(request_id: int, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


# ------------------------------------------------------------------ the pure gate


def test_key_options_read_as_openssh_writes_them() -> None:
    policy = Policy.parse('tools="greet,echo", resources="file:///srv/*"')
    assert policy.tools == ("greet", "echo")
    assert policy.allows("resources", "file:///srv/a.txt")
    assert not policy.allows("resources", "file:///etc/passwd")
    assert policy.prompts is None
    assert Policy.parse("").unrestricted
    with pytest.raises(ConfigurationError, match="unknown key option"):
        Policy.parse('command="rm -rf /"')


def test_a_call_outside_the_policy_is_answered_and_recorded_never_forwarded() -> None:
    records: list[dict[str, Any]] = []
    now = [100.0]
    gate = Gate(
        Policy(tools=("greet",)), {"peer": "SHA256:x"}, records.append, clock=lambda: now[0]
    )
    answer = gate.from_peer(request(1, "tools/call", name="echo", arguments={}), 80)
    assert answer is not None
    error = json.loads(answer)
    assert (error["id"], error["error"]["code"]) == (1, NOT_ALLOWED)
    assert "echo" in error["error"]["message"]
    assert gate.from_peer(request(2, "tools/call", name="greet", arguments={}), 90) is None
    now[0] += 0.25
    gate.from_server({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}, 40)
    refused, done = records
    assert (refused["method"], refused["name"], refused["outcome"]) == (
        "tools/call",
        "echo",
        "refused",
    )
    assert (done["name"], done["outcome"], done["bytes_in"], done["bytes_out"]) == (
        "greet",
        "ok",
        90,
        40,
    )
    assert done["duration_ms"] == 250.0
    assert done["peer"] == "SHA256:x"
    assert "params" not in done  # arguments and results only when asked for


def test_lists_show_only_what_the_peer_may_use() -> None:
    gate = Gate(Policy(tools=("greet",), prompts=()), {})
    assert gate.from_peer(request(1, "tools/list"), 10) is None
    assert gate.from_peer(request(2, "prompts/list"), 10) is None
    tools = gate.from_server(
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "greet"}, {"name": "echo"}]}}, 9
    )
    assert [t["name"] for t in tools["result"]["tools"]] == ["greet"]  # type: ignore[index]
    prompts = gate.from_server(
        {"jsonrpc": "2.0", "id": 2, "result": {"prompts": [{"name": "p"}]}}, 9
    )
    assert prompts["result"]["prompts"] == []  # type: ignore[index]


def test_a_request_id_json_rpc_does_not_allow_costs_the_gate_nothing() -> None:
    """Regression: an id that is a list or an object (unhashable) raised inside the gate,
    which ended the peer's session instead of letting the server answer it."""
    gate = Gate(Policy(tools=("greet",)), {})
    for bad_id in ([1], {"a": 1}, True):
        allowed = {"jsonrpc": "2.0", "id": bad_id, "method": "tools/call"}
        assert gate.from_peer({**allowed, "params": {"name": "greet"}}, 10) is None
        refused = gate.from_peer({**allowed, "params": {"name": "echo"}}, 10)
        assert refused is not None
        assert json.loads(refused)["id"] is None
        answer = {"jsonrpc": "2.0", "id": bad_id, "error": {"code": -32600, "message": "x"}}
        assert gate.from_server(answer, 10) is answer


def test_unanswered_requests_are_recorded_when_the_session_ends() -> None:
    records: list[dict[str, Any]] = []
    gate = Gate(Policy(), {}, records.append, payloads=True)
    gate.from_peer(request(7, "tools/call", name="wait", arguments={"seconds": 600}), 50)
    gate.end("peer said bye")
    assert records[0]["outcome"] == "unanswered: peer said bye"
    assert records[0]["params"] == {"name": "wait", "arguments": {"seconds": 600}}


# ------------------------------------------------------------------ through real peers


@pytest.mark.anyio
async def test_an_in_process_server_shows_each_key_only_its_tools(engine: str) -> None:
    alice, bob = Identity.generate("alice"), Identity.generate("bob")
    records: list[dict[str, Any]] = []
    access = Access({alice.public.base64: Policy(tools=("greet",))}, audit=records.append)
    served = options(expect_peer_keys=(alice.public.line, bob.public.line))
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, options=served, access=access),
    ):
        transport = connect(server.url, room="lab", token=CLIENT, options=options(identity=alice))
        async with mcp_client(transport) as session:
            assert [t.name for t in (await session.list_tools()).tools] == ["greet"]
            with pytest.raises(MCPError, match="not allowed"):
                await session.call_tool("echo", {"data": "x"})
            assert text_of(await session.call_tool("greet", {"name": "a"})) == "Hello, a!"
        transport = connect(server.url, room="lab", token=CLIENT, options=options(identity=bob))
        async with mcp_client(transport) as session:  # listed without options: everything
            assert {"greet", "echo"} <= {t.name for t in (await session.list_tools()).tools}
    seen = [(r["peer"], r["method"], r.get("name"), r["outcome"]) for r in records]
    fingerprint = alice.public.fingerprint
    assert (fingerprint, "tools/call", "echo", "refused") in seen
    assert (fingerprint, "tools/call", "greet", "ok") in seen
    assert (bob.public.fingerprint, "tools/list", None, "ok") in seen


INIT = request(
    1,
    "initialize",
    protocolVersion="2025-06-18",
    capabilities={},
    clientInfo={"name": "t", "version": "1"},
)


@pytest.mark.anyio
async def test_a_stdio_child_behind_serve_enforces_the_authorized_keys_options(
    tmp_path: Path,
) -> None:
    from mcp_webrtc.identity import write_identity

    from .support import serve_args

    alice = Identity.generate("alice")
    key_file = write_identity(alice, tmp_path / "alice.pem")
    (tmp_path / "authorized").write_text(f'tools="greet" {alice.public.line}\n')
    audit = tmp_path / "audit.jsonl"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    lines = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        request(2, "tools/list"),
        request(3, "tools/call", name="echo", arguments={"data": "secret"}),
        request(4, "tools/call", name="greet", arguments={"name": "s"}),
    ]
    async with rendezvous(HOST) as server:
        args = serve_args(
            server.url, HOST, CLIENT, "--authorized-keys", str(tmp_path / "authorized")
        )
        args += ["--audit", str(audit), "--", sys.executable, "-m", "tests.stdio_server"]
        host = await anyio.open_process(
            [sys.executable, "-m", "mcp_webrtc", *args], cwd=ROOT, env=env
        )
        try:
            from .support import wait_registered

            await wait_registered(server)
            command = [sys.executable, "-m", "mcp_webrtc", "connect", server.url, "--room", "lab"]
            command += [
                "--token",
                CLIENT,
                "--host-candidates",
                "loopback",
                "--identity",
                str(key_file),
            ]
            command += ["--known-servers", str(tmp_path / "known")]
            stdin = "".join(json.dumps(line) + "\n" for line in lines).encode()
            with anyio.fail_after(60):
                done = await anyio.run_process(command, input=stdin, cwd=ROOT, env=env, check=False)
        finally:
            host.terminate()
            await host.aclose()
    answers = {a["id"]: a for a in map(json.loads, done.stdout.decode().splitlines())}
    assert [t["name"] for t in answers[2]["result"]["tools"]] == ["greet"], answers
    assert answers[3]["error"]["code"] == NOT_ALLOWED
    assert answers[4]["result"]["content"][0]["text"] == "Hello, s!"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {(r["method"], r.get("name"), r["outcome"]) for r in records} >= {
        ("tools/call", "echo", "refused"),
        ("tools/call", "greet", "ok"),
    }
    assert all(r["peer"] == alice.public.fingerprint for r in records)
    assert "secret" not in audit.read_text()  # no arguments without --audit-payloads


# ------------------------------------------------------------------ labeled client tokens


@pytest.mark.anyio
async def test_the_host_learns_which_labeled_token_a_client_joined_with() -> None:
    from mcp_webrtc import RendezvousRefused
    from mcp_webrtc.websocket_signaling import RendezvousHost, WebSocketSignaling

    labeled = {"alice@laptop": "alice-secret", "ci": "ci-secret"}
    async with (
        rendezvous(HOST) as server,
        RendezvousHost(server.url, "lab", HOST, CLIENT, labeled_tokens=labeled) as host,
    ):
        sessions = host.sessions()
        for token, label in (("ci-secret", "ci"), (CLIENT, None), ("alice-secret", "alice@laptop")):
            client = WebSocketSignaling(server.url, "lab", token)
            await client.connect()
            with anyio.fail_after(10):
                session = await sessions.__anext__()
            assert session.label == label
            await client.close()
        with pytest.raises(RendezvousRefused):
            await WebSocketSignaling(server.url, "lab", "guess").connect()


def test_a_client_tokens_file_gives_labels_tokens_and_options(tmp_path: Path) -> None:
    from mcp_webrtc.cli.commands import labeled_tokens

    path = tmp_path / "tokens"
    path.write_text('# who may join\ntools="greet", prompts="" alice s3cret\nci t0ken\n')
    found = labeled_tokens(str(path))
    assert found["alice"] == ("s3cret", Policy(tools=("greet",), prompts=()))
    assert found["ci"] == ("t0ken", Policy())
    path.write_text('# a comment, then a blank line\n\ntools="greet" s3cret\n')
    with pytest.raises(ConfigurationError, match=r"tokens:3: .*not a label"):
        labeled_tokens(str(path))  # the line number in the file, comments counted


@pytest.mark.anyio
async def test_a_token_label_limits_its_client_and_names_it_in_the_audit(engine: str) -> None:
    records: list[dict[str, Any]] = []
    access = Access(labels={"alice": Policy(tools=("greet",))}, audit=records.append)
    async with (
        rendezvous(HOST) as server,
        serving(server.url, HOST, CLIENT, access=access, labeled_tokens={"alice": "alice-token"}),
    ):
        transport = connect(server.url, room="lab", token="alice-token", options=options())
        async with mcp_client(transport) as session:
            assert [t.name for t in (await session.list_tools()).tools] == ["greet"]
        transport = connect(server.url, room="lab", token=CLIENT, options=options())
        async with mcp_client(transport) as session:  # the room's own token: no limits
            assert "echo" in {t.name for t in (await session.list_tools()).tools}
    peers = {(r["peer"], r["method"]) for r in records}
    assert ("token:alice", "tools/list") in peers
    assert ("token", "tools/list") in peers
