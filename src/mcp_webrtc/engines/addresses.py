"""Which local addresses may be offered as ICE host candidates (``host_candidates``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from ..exceptions import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_predicate(entries: tuple[str, ...] | None) -> Callable[[str], bool] | None:
    """A test for addresses in ``entries`` (networks, addresses, interface names), or
    ``None`` when every address is allowed. Interface names are resolved now."""
    if entries is None:
        return None
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:  # an interface name
            networks += _interface_networks(entry)

    def keep(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False  # e.g. an mDNS name: not an address we can vouch for
        return any(ip.version == n.version and ip in n for n in networks)

    return keep


def _interface_networks(name: str) -> list[Network]:
    import ifaddr

    found: list[Network] = []
    adapters = [a for a in ifaddr.get_adapters() if name in (a.name, a.nice_name)]
    if not adapters:
        raise ConfigurationError(f"host_candidates: no network interface {name!r}")
    for adapter in adapters:
        for ip in adapter.ips:
            host = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            found.append(ipaddress.ip_network(host))
    return found
