"""A network lab in namespaces: two home networks behind NAT routers, and a public network
with coturn and the rendezvous. Everything lives in namespaces this test run creates
inside its own isolated namespace; nothing can reach another host.

    alice 10.1.0.2 ┐                                   ┌ 10.2.0.2 bob
    carol 10.1.0.3 ┴ br (10.1.0.1) router-a 203.0.113.10 ┐ 203.0.113.20 router-b (10.2.0.1)
                                                    public 203.0.113.1: coturn, rendezvous
                                                    (unknown destinations: a silent sink)

Routers NAT their LAN (``cone``: MASQUERADE and only established traffic back in;
``symmetric``: MASQUERADE --random-fully), filter it (``open``; ``turn-udp``: UDP only to
the TURN server; ``no-udp``; ``nothing``: only the rendezvous), and can lose packets (tc
iptables statistic: this kernel has no netem). Recipes: shared/NOTES.md.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PUBLIC_IP = "203.0.113.1"
TURN_PORT = 3478
TURNS_PORT = 5349
RENDEZVOUS_PORT = 8765
TURN_SECRET = "lab-turn-shared-secret"
HOST_TOKEN, CLIENT_TOKEN = "lab-host", "lab-client"
ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed: {done.stderr.strip()}")
    return done


def make_certificates(workdir: Path, address: str) -> None:
    """A CA (ca.pem) and a certificate for ``address`` signed by it (turn.pem, turn.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("mcp-webrtc lab CA"))
        .issuer_name(name("mcp-webrtc lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(address))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (workdir / "ca.pem").write_bytes(ca.public_bytes(pem))
    (workdir / "turn.pem").write_bytes(cert.public_bytes(pem))
    (workdir / "turn.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class Lab:
    prefix: str = field(default_factory=lambda: f"mw{os.getpid() % 100000}")
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mcp-webrtc-lab-")))

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def sh(self, name: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns(name), "sh", "-c", command, check=check)

    # ------------------------------------------------------------------ building

    def add_ns(self, name: str) -> None:
        run("ip", "netns", "add", self.ns(name))
        self.namespaces.append(self.ns(name))
        self.sh(name, "ip link set lo up")

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp_a, tmp_b = f"{self.prefix}{a_if}"[:15], f"{self.prefix}{b_if}x"[:15]
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        run("ip", "link", "set", tmp_a, "netns", self.ns(a))
        run("ip", "link", "set", tmp_b, "netns", self.ns(b))
        self.sh(a, f"ip link set {tmp_a} name {a_if} && ip link set {a_if} up")
        self.sh(b, f"ip link set {tmp_b} name {b_if} && ip link set {b_if} up")

    def build(self) -> None:
        for name in ("public", "sink", "router-a", "router-b", "alice", "carol", "bob"):
            self.add_ns(name)
        # public network: a bridge the routers plug into, and a silent sink for unknown
        # destinations (coturn drops a whole allocation on "network unreachable"): a veth
        # into a namespace that has no address and answers nothing.
        self.sh(
            "public",
            "ip link add br0 type bridge && ip link set br0 up && "
            f"ip addr add {PUBLIC_IP}/24 dev br0",
        )
        self.link("public", "sink", "sink", "hole")
        self.sh("public", "ip route add default dev sink")
        for router, wan_ip in (("router-a", "203.0.113.10"), ("router-b", "203.0.113.20")):
            self.link(router, "wan", "public", f"p-{router[-1]}")
            self.sh("public", f"ip link set p-{router[-1]} master br0")
            self.sh(router, f"ip addr add {wan_ip}/24 dev wan && sysctl -qw net.ipv4.ip_forward=1")
        # LAN a: a bridge in router-a with alice and carol; LAN b: bob alone
        self.sh(
            "router-a",
            "ip link add lan type bridge && ip link set lan up && ip addr add 10.1.0.1/24 dev lan",
        )
        for host, address in (("alice", "10.1.0.2"), ("carol", "10.1.0.3")):
            self.link(host, "eth0", "router-a", f"l-{host}")
            self.sh("router-a", f"ip link set l-{host} master lan")
            self.sh(host, f"ip addr add {address}/24 dev eth0 && ip route add default via 10.1.0.1")
        self.link("bob", "eth0", "router-b", "lan")
        self.sh("router-b", "ip addr add 10.2.0.1/24 dev lan")
        self.sh("bob", "ip addr add 10.2.0.2/24 dev eth0 && ip route add default via 10.2.0.1")
        self.make_certificates()
        self.start_coturn()
        self.start_rendezvous()

    def make_certificates(self) -> None:
        make_certificates(self.workdir, PUBLIC_IP)

    def spawn(
        self,
        name: str,
        *args: str,
        env: dict[str, str] | None = None,
        stdout: Any = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(name), *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=subprocess.DEVNULL if os.environ.get("LAB_QUIET", "1") == "1" else None,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_coturn(self) -> None:
        conf = self.workdir / "turnserver.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listening-ip={PUBLIC_IP}",
                    f"relay-ip={PUBLIC_IP}",
                    f"listening-port={TURN_PORT}",
                    f"tls-listening-port={TURNS_PORT}",
                    f"cert={self.workdir / 'turn.pem'}",
                    f"pkey={self.workdir / 'turn.key'}",
                    "realm=lab.mcp-webrtc",
                    "fingerprint",
                    "lt-cred-mech",
                    # time-limited REST credentials (coturn's use-auth-secret), as handed
                    # out by the rendezvous
                    "use-auth-secret",
                    f"static-auth-secret={TURN_SECRET}",
                    "no-cli",
                    "no-multicast-peers",
                    "allow-loopback-peers",
                    "min-port=49152",
                    "max-port=65535",
                    f"pidfile={self.workdir / 'turnserver.pid'}",
                    f"log-file={self.workdir / 'turnserver.log'}",
                    "simple-log",
                ]
            )
            + "\n"
        )
        self.spawn("public", "turnserver", "-c", str(conf))
        self.wait_port("public", TURN_PORT, "tcp")

    def start_rendezvous(self) -> None:
        self.spawn(
            "public",
            sys.executable,
            "-m",
            "mcp_webrtc",
            "signal",
            "--host",
            PUBLIC_IP,
            "--port",
            str(RENDEZVOUS_PORT),
            "--host-token",
            HOST_TOKEN,
            "--turn-url",
            f"turn:{PUBLIC_IP}:{TURN_PORT}",
            "--turn-secret",
            TURN_SECRET,
        )
        self.wait_port("public", RENDEZVOUS_PORT, "tcp")

    def wait_port(self, name: str, port: int, proto: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            listening = self.sh(name, f"cat /proc/net/{proto}", check=False).stdout
            if f":{port:04X} 00000000:0000 0A" in listening:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {name}:{port}")

    @property
    def rendezvous_url(self) -> str:
        return f"ws://{PUBLIC_IP}:{RENDEZVOUS_PORT}/"

    # ------------------------------------------------------------------ conditions

    def configure(
        self, router: str, nat: str = "cone", firewall: str = "open", loss: float = 0.0
    ) -> None:
        """(Re)write a router's NAT, firewall and packet loss."""
        rules = [
            "iptables -t nat -F",
            "iptables -F",
            "iptables -P FORWARD ACCEPT",
            "iptables -P INPUT ACCEPT",
        ]
        masquerade = "iptables -t nat -A POSTROUTING -o wan -j MASQUERADE"
        rules.append(masquerade + (" --random-fully" if nat == "symmetric" else ""))
        # home-router behaviour: only replies come back in from the WAN
        rules += [
            "iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "iptables -A FORWARD -i wan -j DROP",
            "iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "iptables -A INPUT -i wan -j DROP",
        ]
        to_rdv = f"-d {PUBLIC_IP} -p tcp --dport {RENDEZVOUS_PORT} -j ACCEPT"
        if firewall == "turn-udp":
            rules += [
                f"iptables -A FORWARD -i lan -p udp -d {PUBLIC_IP} --dport {TURN_PORT} -j ACCEPT",
                "iptables -A FORWARD -i lan -p udp -j DROP",
            ]
        elif firewall == "no-udp":
            rules += ["iptables -A FORWARD -i lan -p udp -j DROP"]
        elif firewall == "nothing":
            rules += [f"iptables -A FORWARD -i lan {to_rdv}", "iptables -A FORWARD -i lan -j DROP"]
        elif firewall != "open":
            raise ValueError(firewall)
        if loss:  # both directions on the WAN (this kernel has no netem: iptables statistic)
            drop = f"-m statistic --mode random --probability {loss / 100:.4f} -j DROP"
            rules[4:4] = [
                f"iptables -I FORWARD 1 -i wan {drop}",
                f"iptables -I FORWARD 1 -o wan {drop}",
            ]
        self.sh(router, " && ".join(rules))

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for namespace in reversed(self.namespaces):
            run("ip", "netns", "del", namespace, check=False)
        self.namespaces.clear()
