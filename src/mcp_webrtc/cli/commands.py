"""What each command does, once its arguments are parsed and its secrets resolved."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import secrets
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .._core.identity import KEY_TYPE, Identity, PublicKey
from .._core.policy import Policy
from .._core.rendezvous import LABEL_PATTERN
from ..access import Access
from ..exceptions import ConfigurationError
from ..identity import KEYS_ONLY_TOKEN, KnownServers, default_identity_path, write_identity
from .connect import cmd_connect
from .flags import required, webrtc_options


def token_lines(path: str) -> list[str]:
    """The tokens in a file: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the token file {path}: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def one_token(value: str | None, path: str | None, flag: str, *env: str) -> str:
    """A token from its flag, its file, or the first of ``env`` that is set."""
    if path:
        tokens = token_lines(path)
        if not tokens:
            raise ConfigurationError(f"the token file {path} holds no token")
        return tokens[0]
    value = value or next((os.environ[name] for name in env if os.environ.get(name)), None)
    if not value:
        raise ConfigurationError(f"{flag} or {flag}-file is required (or set {env[0]})")
    return value


def resolve_secrets(args: argparse.Namespace) -> list[str]:
    """Fill in tokens from files and the environment; return every secret to redact."""
    if args.name == "serve":
        args.token = one_token(args.token, args.token_file, "--token", "MCP_WEBRTC_TOKEN")
        args.labeled = labeled_tokens(args.client_tokens) if args.client_tokens else {}
        given = args.client_token or args.client_token_file
        keys_only = args.authorized_keys and not (
            given or args.labeled or os.environ.get("MCP_WEBRTC_CLIENT_TOKEN")
        )
        if keys_only:  # the keys are the gate: any client may join, only listed ones connect
            args.client_token = KEYS_ONLY_TOKEN
        elif args.labeled and not (given or os.environ.get("MCP_WEBRTC_CLIENT_TOKEN")):
            args.client_token = secrets.token_urlsafe(32)  # only the labeled tokens open it
        else:
            args.client_token = one_token(
                args.client_token,
                args.client_token_file,
                "--client-token",
                "MCP_WEBRTC_CLIENT_TOKEN",
            )
        found = [args.token, "" if keys_only else args.client_token]
        found += [token for token, _policy in args.labeled.values()]
        lines = os.environ.get("MCP_WEBRTC_HTTP_HEADERS", "") if args.http_url else ""
        args.headers = http_headers(args.header, lines)
        found += list(args.headers.values())
    elif args.name == "connect":
        env_token = os.environ.get("MCP_WEBRTC_CLIENT_TOKEN") or os.environ.get("MCP_WEBRTC_TOKEN")
        if args.token or args.token_file or env_token:
            args.token = one_token(
                args.token,
                args.token_file,
                "--token",
                "MCP_WEBRTC_CLIENT_TOKEN",
                "MCP_WEBRTC_TOKEN",
            )
            found = [args.token]
        else:  # a room whose server admits clients by key alone
            args.token, found = KEYS_ONLY_TOKEN, []
    elif args.name == "signal":
        args.host_token = [
            *(args.host_token or []),
            *(token_lines(args.token_file) if args.token_file else []),
        ]
        found = [*args.host_token, args.turn_secret or "", args.turn_pass or ""]
    else:
        found = []
    found.append(getattr(args, "turn_pass", None) or "")
    return [secret for secret in found if secret]


def http_headers(flags: list[str], lines: str) -> dict[str, str]:
    """``serve --header 'Name: value'`` flags, after the lines of ``lines`` (the variable
    MCP_WEBRTC_HTTP_HEADERS): the headers sent to ``--url``, a flag replacing a line of the
    same name (names compare case-insensitively). Values are secrets."""
    headers: dict[str, tuple[str, str]] = {}
    for item in [*lines.splitlines(), *flags]:
        if not item.strip():
            continue
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError("--header wants 'Name: value' (a colon after the name)")
        headers[name.strip().lower()] = (name.strip(), value.strip())
    return dict(headers.values())


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (like uvicorn's app spec)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--app wants module:attribute, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


async def cmd_signal(args: argparse.Namespace) -> int:
    from ..rendezvous import RendezvousConfig, RendezvousServer

    config = RendezvousConfig(
        host=args.host,
        port=args.port,
        host_tokens=tuple(args.host_token),
        max_message_size=args.max_message_size,
        max_rooms=args.max_rooms,
        max_sessions_per_room=args.max_sessions,
        rate=args.rate,
        burst=args.burst,
        allowed_origins=tuple(args.allow_origin or ()),
        public_url=args.public_url,
        allow_loopback_origins=not args.no_loopback_origins,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        stun_urls=tuple(args.stun_url or ()),
        turn_urls=tuple(args.turn_url or ()),
        turn_secret=args.turn_secret,
        turn_ttl=args.turn_ttl,
        turn_username=args.turn_user,
        turn_password=args.turn_pass,
        redis_url=args.redis,
        redis_prefix=args.redis_prefix,
        instance_ttl=args.instance_ttl,
        metrics=not args.no_metrics,
    )
    async with RendezvousServer(config) as server:
        print(f"rendezvous listening at {server.url}", file=sys.stderr, flush=True)
        await server.serve_forever()
    return 0


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    from ..bridges import child_environment

    pairs = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--env wants KEY=VALUE, got {item!r}")
        pairs[key] = value
    return child_environment(pairs, args.pass_env)


async def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import serve
    from ..stdio_server import StdioServer

    room = required(args.room, "--room", "MCP_WEBRTC_ROOM")
    if sum(map(bool, (args.app, args.command, args.http_url))) > 1:
        raise ConfigurationError("give one of --app, --url or a command after --")
    if args.headers and not args.http_url:
        raise ConfigurationError("--header goes with --url")
    if args.app:
        target: Any = load_app(args.app)
    elif args.command:
        env = _child_env(args)
        target = StdioServer(args.command[0], args.command[1:], env=env)
    elif args.http_url:
        from ..http_upstream import HttpServer

        target = HttpServer(args.http_url, args.headers)
    else:
        raise ConfigurationError("give --app module:attr, --url URL or -- COMMAND [ARGS...]")
    keys = authorized_keys(args.authorized_keys) if args.authorized_keys else {}
    options = webrtc_options(args, [key.line for key in keys])
    worker = getattr(args, "worker", None)
    if worker is None:
        print(invitation(args.url, room, options.identity), file=sys.stderr, flush=True)
    if args.workers > 1:
        from .workers import supervise

        return await supervise(args)
    metrics = None
    if args.metrics_port is not None:
        from ..serve_metrics import ServeMetrics

        metrics = ServeMetrics()
        if worker is None:  # workers: the supervisor serves their sum
            metrics.listen(args.metrics_host, args.metrics_port)
    with contextlib.ExitStack() as stack:
        audit = None
        if args.audit:
            out = sys.stderr if args.audit == "-" else stack.enter_context(_append(args.audit))
            audit = _audit_writer(out)
        policies = {key.base64: policy for key, policy in keys.items()}
        await serve(
            target,
            args.url,
            room=room,
            token=args.token,
            client_token=args.client_token,
            options=options,
            max_sessions=args.max_sessions,
            access=Access(
                policies,
                labels={label: policy for label, (_token, policy) in args.labeled.items()},
                audit=audit,
                payloads=args.audit_payloads,
            ),
            labeled_tokens={label: token for label, (token, _policy) in args.labeled.items()},
            metrics=metrics,
        )
    return 0


def invitation(url: str, room: str, identity: Identity | None) -> str:
    """What a client needs to connect: the command, and the entry for a desktop
    assistant's MCP configuration. The client token is never shown (a placeholder)."""
    words = ["mcp-webrtc", "connect", url, "--room", room, "--token-file", "CLIENT_TOKEN_FILE"]
    if identity is not None:
        words += ["--server-key", identity.public.line]
    entry = {room: {"command": words[0], "args": words[1:]}}
    config = json.dumps(entry)[1:-1]
    hint = "" if identity else " (no identity key: run `mcp-webrtc keygen` so they can pin it)"
    return (
        f"mcp-webrtc: clients connect with{hint}:\n  {shlex.join(words)}\n"
        f'mcp-webrtc: in a desktop assistant\'s "mcpServers":\n  {config}'
    )


def _append(path: str) -> TextIO:
    try:
        return open(path, "a", buffering=1)
    except OSError as exc:
        raise ConfigurationError(f"cannot open the audit log {path}: {exc.strerror}") from None


def _audit_writer(out: TextIO) -> Callable[[dict[str, Any]], None]:
    def write(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        out.flush()

    return write


def numbered_lines(path: str) -> list[tuple[int, str]]:
    """The lines of a configuration file that say something, stripped, with their line
    numbers in the file (for error messages): blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    lines = enumerate(text.splitlines(), 1)
    return [(n, line.strip()) for n, line in lines if line.strip() and line.lstrip()[0] != "#"]


def labeled_tokens(path: str) -> dict[str, tuple[str, Policy]]:
    """The client tokens of a ``--client-tokens`` file by label, each with its policy: one
    ``[options] <label> <token>`` per line (options as in authorized keys)."""
    found: dict[str, tuple[str, Policy]] = {}
    for number, line in numbered_lines(path):
        words = line.rsplit(None, 2)
        if len(words) < 2:
            raise ConfigurationError(f"{path}:{number}: want '[options] <label> <token>'")
        options, label, token = words if len(words) == 3 else ["", *words]
        if not LABEL_PATTERN.fullmatch(label):
            raise ConfigurationError(f"{path}:{number}: {label!r} is not a label (-_.@ allowed)")
        try:
            found[label] = (token, Policy.parse(options.strip().rstrip(",")))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}:{number}: {exc}") from None
    if not found:
        raise ConfigurationError(f"{path} lists no token")
    return found


def authorized_keys(path: str) -> dict[PublicKey, Policy]:
    """The keys of an authorized-keys file and each one's policy (OpenSSH style: options
    such as ``tools="a,b"`` before the key type; blank lines and # comments skipped)."""
    keys = {}
    for number, line in numbered_lines(path):
        at = line.find(KEY_TYPE)
        if at < 0:
            raise ConfigurationError(f"{path}:{number}: no {KEY_TYPE} key")
        try:
            keys[PublicKey.parse(line[at:])] = Policy.parse(line[:at].strip().rstrip(","))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}:{number}: {exc}") from None
    if not keys:
        raise ConfigurationError(f"{path} lists no key: no client could connect")
    return keys


async def cmd_keygen(args: argparse.Namespace) -> int:
    identity = Identity.generate(args.comment)
    path = write_identity(identity, args.out or default_identity_path(), force=args.force)
    print(f"wrote the private key to {path}", file=sys.stderr)
    print(identity.public.line)
    print(f"fingerprint {identity.public.fingerprint}", file=sys.stderr)
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    await run_demo()
    return 0


async def cmd_forget_server(args: argparse.Namespace) -> int:
    known = KnownServers(args.known_servers)
    room = required(args.room, "--room", "MCP_WEBRTC_ROOM")
    found = known.forget(args.url, room)
    print(f"{'forgot' if found else 'no key recorded for'} room {room!r} at {args.url}")
    return 0 if found else 1


COMMANDS = {
    "signal": cmd_signal,
    "serve": cmd_serve,
    "connect": cmd_connect,
    "demo": cmd_demo,
    "keygen": cmd_keygen,
    "forget-server": cmd_forget_server,
}
