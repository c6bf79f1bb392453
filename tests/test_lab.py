"""Reach: NATs, firewalls and TURN in a namespace lab (tests/lab.py), and fast clear failures."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mcp_webrtc._core.rendezvous import turn_rest_credentials

from .lab import PUBLIC_IP, ROOT, TURN_PORT, TURN_SECRET, TURNS_PORT, Lab

pytestmark = pytest.mark.lab
_rooms = itertools.count()

STUN = {"urls": [f"stun:{PUBLIC_IP}:{TURN_PORT}"]}


def turn(url: str, ttl: float = 3600) -> dict[str, Any]:
    username, password = turn_rest_credentials(TURN_SECRET, "lab-peer", ttl)
    return {"urls": [url], "username": username, "credential": password}


TURN_UDP = f"turn:{PUBLIC_IP}:{TURN_PORT}"
TURN_TCP = f"turn:{PUBLIC_IP}:{TURN_PORT}?transport=tcp"
TURNS = f"turns:{PUBLIC_IP}:{TURNS_PORT}"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Built once per run (about 3 s), always torn down: processes killed, namespaces gone."""
    built = Lab()
    try:
        built.build()
        yield built
    finally:
        built.teardown()


def scenario(
    lab: Lab,
    *,
    server: dict[str, Any] | None = None,
    client: dict[str, Any] | None = None,
    server_ns: str = "alice",
    client_ns: str = "bob",
    env: dict[str, str] | None = None,
    **client_extra: Any,
) -> dict[str, Any]:
    """Serve on ``server_ns``, connect from ``client_ns``; the client's JSON report."""
    room = f"room{next(_rooms)}"
    base = {"url": lab.rendezvous_url, "room": room}
    peer = [sys.executable, "-m", "tests.lab_peer"]
    host = lab.spawn(
        server_ns,
        *peer,
        "serve",
        json.dumps({**base, "options": server or {}}),
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert host.stdout is not None
        assert host.stdout.readline().strip() == b"ready"
        spec = {**base, "options": client or {}, **client_extra}
        done = subprocess.run(
            ["ip", "netns", "exec", lab.ns(client_ns), *peer, "client", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
    finally:
        host.kill()
        host.wait(timeout=10)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def test_direct_lan_uses_host_candidates(lab: Lab) -> None:
    lab.configure("router-a")
    report = scenario(lab, client_ns="carol")
    assert report["ok"], report
    assert (report["local"], report["remote"]) == ("host", "host")


def test_cone_nats_connect_with_stun(lab: Lab) -> None:
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone")
    report = scenario(lab, server={"ice_servers": [STUN]}, client={"ice_servers": [STUN]})
    assert report["ok"], report
    assert "relay" not in (report["local"], report["remote"])
    assert "srflx" in (report["local"], report["remote"]), report


def test_symmetric_nats_need_and_use_turn_udp(lab: Lab) -> None:
    lab.configure("router-a", nat="symmetric")
    lab.configure("router-b", nat="symmetric")
    servers = [STUN, turn(TURN_UDP)]
    report = scenario(lab, server={"ice_servers": servers}, client={"ice_servers": servers})
    assert report["ok"], report
    assert "relay" in (report["local"], report["remote"]), report
    assert report["protocol"] == "udp"


def test_udp_blocked_connects_through_turn_over_tcp(lab: Lab) -> None:
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone", firewall="no-udp")
    report = scenario(
        lab,
        server={"ice_servers": [STUN, turn(TURN_UDP)]},
        client={"ice_servers": [turn(TURN_TCP)], "policy": "relay"},
    )
    assert report["ok"], report
    assert report["local"] == "relay", report


@pytest.mark.engines(
    "aiortc",
    reason="libwebrtc checks a turns: certificate against its built-in roots only; its API "
    "takes no CA, so the lab's own CA cannot be trusted (a public CA's certificate works)",
)
def test_udp_blocked_connects_through_turns_with_the_lab_ca(lab: Lab) -> None:
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone", firewall="no-udp")
    report = scenario(
        lab,
        server={"ice_servers": [STUN, turn(TURN_UDP)]},
        client={"ice_servers": [turn(TURNS)], "policy": "relay"},
        env={"SSL_CERT_FILE": str(lab.workdir / "ca.pem")},
    )
    assert report["ok"], report
    assert report["local"] == "relay", report


def test_turn_with_an_untrusted_certificate_fails_clearly(lab: Lab) -> None:
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone", firewall="no-udp")
    report = scenario(
        lab,
        server={"ice_servers": [STUN, turn(TURN_UDP)], "connect_timeout": 6},
        client={"ice_servers": [turn(TURNS)], "policy": "relay", "connect_timeout": 6},
    )
    assert not report["ok"]
    assert report["reason"] == "NO_LOCAL_CANDIDATES", report
    assert "TURN" in report["message"], report
    assert report["elapsed_s"] < 6 + 5  # the configured timeout, not aiortc's silent hang


def test_credentials_from_the_rendezvous_reach_through_the_relay(lab: Lab) -> None:
    """No ICE servers configured on the peers: the rendezvous hands out TURN with
    time-limited REST credentials, and relay-only peers connect through it."""
    lab.configure("router-a", nat="symmetric")
    lab.configure("router-b", nat="symmetric")
    report = scenario(lab, server={"policy": "relay"}, client={"policy": "relay"}, calls=5)
    assert report["ok"], report
    assert (report["local"], report["remote"]) == ("relay", "relay")
    assert report["calls_ok"]


def test_expired_turn_credentials_fail_clearly(lab: Lab) -> None:
    lab.configure("router-a", nat="symmetric")
    lab.configure("router-b", nat="symmetric")
    expired = turn(TURN_UDP, ttl=-3600)  # used before the rendezvous' valid ones
    report = scenario(
        lab,
        server={"policy": "relay", "connect_timeout": 6},
        client={"ice_servers": [expired], "policy": "relay", "connect_timeout": 6},
    )
    assert not report["ok"]
    assert report["reason"] == "NO_LOCAL_CANDIDATES", report
    assert "TURN" in report["message"]


def test_no_path_fails_with_the_cause_within_the_timeout(lab: Lab) -> None:
    lab.configure("router-a", nat="cone", firewall="nothing")
    lab.configure("router-b", nat="cone", firewall="nothing")
    # The TURN server the rendezvous hands out is blocked too: each side spends aioice's
    # 5 s gathering timeout on it before its description leaves, then ICE checks fail.
    report = scenario(lab, server={"connect_timeout": 25}, client={"connect_timeout": 15})
    assert not report["ok"]
    assert report["reason"] == "ICE_FAILED", report
    assert report["elapsed_s"] < 15 + 5  # the configured timeout, not aiortc's ~63 s


def test_zero_candidates_fail_with_that_cause(lab: Lab) -> None:
    """No usable host address, and the rendezvous' TURN server unreachable (UDP blocked)."""
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone", firewall="no-udp")
    report = scenario(
        lab,
        server={"ice_servers": [STUN]},
        client={"host_candidates": ["192.0.2.99/32"], "connect_timeout": 4},
    )
    assert not report["ok"]
    assert report["reason"] == "NO_LOCAL_CANDIDATES", report


def test_five_percent_loss_thousand_calls_and_16_mib(lab: Lab) -> None:
    lab.configure("router-a", nat="cone")
    lab.configure("router-b", nat="cone", loss=5)
    try:
        report = scenario(
            lab,
            server={"ice_servers": [STUN]},
            client={"ice_servers": [STUN]},
            calls=1000,
            concurrency=25,
            blob=16 * 1024 * 1024,
        )
    finally:
        lab.configure("router-b", nat="cone")
    assert report["ok"], report
    assert report["calls_ok"], report
    assert report["blob_ok"], report
