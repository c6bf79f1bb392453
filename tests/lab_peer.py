"""One peer of a lab scenario, run inside a lab namespace (see tests/lab.py).

    python -m tests.lab_peer serve  '{"url": ..., "room": ..., "options": {...}}'
    python -m tests.lab_peer client '{"url": ..., "room": ..., "options": {...}, ...}'

``serve`` prints ``ready`` once its room is registered. ``client`` connects, makes the
calls asked for, and prints one JSON line: the selected candidate pair and the results,
or the error with its reason. Exit status 0 either way: the test judges the JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

import anyio

from mcp_webrtc import ConnectError, IceServer, MCPWebRTCError, WebRTCOptions
from mcp_webrtc.serve import connect, serve

from . import support
from .lab import CLIENT_TOKEN, HOST_TOKEN
from .support import make_server, mcp_client, payload, text_of


def build_options(spec: dict[str, Any]) -> WebRTCOptions:
    servers = tuple(
        IceServer(tuple(s["urls"]), s.get("username"), s.get("credential"))
        for s in spec.get("ice_servers", ())
    )
    return WebRTCOptions(
        engine=support.ENGINE,  # type: ignore[arg-type]  # the test's, via MCP_WEBRTC_ENGINE
        ice_servers=servers,
        ice_transport_policy=spec.get("policy", "all"),
        connect_timeout=spec.get("connect_timeout", 15.0),
        dead_peer_timeout=spec.get("dead_peer_timeout", 10.0),
        host_candidates=tuple(spec["host_candidates"]) if "host_candidates" in spec else None,
    )


async def run_serve(spec: dict[str, Any]) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: serve(
                make_server("lab"),
                spec["url"],
                room=spec["room"],
                token=HOST_TOKEN,
                client_token=CLIENT_TOKEN,
                options=build_options(spec.get("options", {})),
                task_status=task_status,
            )
        )
        print("ready", flush=True)


async def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    transport = connect(
        spec["url"],
        room=spec["room"],
        token=CLIENT_TOKEN,
        options=build_options(spec.get("options", {})),
    )
    try:
        async with mcp_client(transport) as client:
            info = transport.connection_info()
            out: dict[str, Any] = {
                "ok": True,
                "connect_s": time.monotonic() - started,
                "local": info.local_candidate_type,
                "remote": info.remote_candidate_type,
                "protocol": info.protocol,
            }
            answers: list[str] = []

            async def calls(worker: int, count: int) -> None:
                for i in range(count):
                    name = f"{worker}-{i}"
                    answers.append(text_of(await client.call_tool("greet", {"name": name})))

            total, concurrency = spec.get("calls", 1), spec.get("concurrency", 1)
            async with anyio.create_task_group() as tg:
                for worker in range(concurrency):
                    tg.start_soon(calls, worker, total // concurrency)
            out["calls_ok"] = len(answers) == total and all(
                a.startswith("Hello, ") for a in answers
            )
            if spec.get("blob"):
                size = spec["blob"]
                text = text_of(await client.call_tool("blob", {"size": size, "seed": 11}))
                expected = hashlib.sha256(payload(size, seed=11).encode()).hexdigest()
                out["blob_ok"] = hashlib.sha256(text.encode()).hexdigest() == expected
            out["elapsed_s"] = time.monotonic() - started
            return out
    except ConnectError as exc:
        return {
            "ok": False,
            "error": type(exc).__name__,
            "reason": exc.reason.name,
            "message": str(exc),
            "elapsed_s": time.monotonic() - started,
        }
    except MCPWebRTCError as exc:
        return {
            "ok": False,
            "error": type(exc).__name__,
            "reason": None,
            "message": str(exc),
            "elapsed_s": time.monotonic() - started,
        }


def main() -> None:
    role, spec = sys.argv[1], json.loads(sys.argv[2])
    if role == "serve":
        anyio.run(run_serve, spec)
    else:
        print(json.dumps(anyio.run(run_client, spec)), flush=True)


if __name__ == "__main__":
    main()
