"""Configuration of one SIP trunk (or plain SIP listener) served by :class:`drivers.sip.line.SipLine`.

Two modes:

* **registration**: ``registrar`` is set; the trunk registers ``username`` with digest auth
  (``password``, ``realm``) and keeps the registration fresh. INVITEs are accepted from the registrar's
  address and from ``allowed_peers``.
* **IP-authenticated peer**: no registrar; ``allowed_peers`` (CIDRs) must name the peers, anything else
  gets 403 Forbidden.

This module is pure (no pjsua2) so that the rest of gatewayd can validate a configuration on a machine
without the SIP stack.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

SUPPORTED_CODECS = ("PCMU", "PCMA")
SUPPORTED_TRANSPORTS = ("udp", "tcp")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SipConfigError(ValueError):
    """A SIP trunk configuration is invalid; the message says which field and why."""


def _host_of_uri(uri: str) -> str:
    """Host part of ``sip:user@host:port;params`` (or ``host:port``)."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    if "@" in rest:
        rest = rest.rsplit("@", 1)[1]
    if rest.startswith("["):
        return rest[1:rest.index("]")]
    return rest.split(":", 1)[0]


@dataclass(frozen=True)
class SipTrunkConfig:
    """One SIP trunk or listener. All fields are validated in ``__post_init__``."""

    name: str
    #: Address the SIP transports bind to (and media, unless ``media_address`` is set).
    bind_address: str = "127.0.0.1"
    #: SIP port for every transport; 0 picks a free port per transport (tests).
    port: int = 5060
    #: "udp" and/or "tcp". The first one carries outbound calls and registration.
    transports: tuple[str, ...] = ("udp",)
    #: Address RTP binds to and advertises in SDP; "" means ``bind_address``.
    media_address: str = ""
    #: First RTP port and how many ports above it may be used (0/0: any free port).
    rtp_port: int = 0
    rtp_port_range: int = 0
    #: Registration mode: ``sip:registrar.example.com[:port]``; empty for an IP-authenticated peer.
    registrar: str = ""
    username: str = ""
    password: str = ""
    realm: str = "*"
    #: Domain of the account's address of record (default: the registrar's host).
    domain: str = ""
    register_expires_s: int = 300
    #: Peers allowed to send INVITEs, as CIDRs ("192.0.2.10/32", "10.0.0.0/8") or plain addresses.
    allowed_peers: tuple[str, ...] = ()
    #: Codec preference, from "PCMU", "PCMA".
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    #: Hang up with reason "rtp-timeout" after this many seconds without RTP on an answered leg (0: never).
    rtp_timeout_s: float = 30.0
    #: User part of this trunk's own address (From of outbound calls on an IP-peer trunk).
    local_user: str = "gatewayd"
    user_agent: str = "gatewayd"
    #: Parsed ``allowed_peers`` (filled in by ``__post_init__``).
    acl: tuple[IpNetwork, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise SipConfigError("sip trunk: name is required")
        where = f"sip trunk {self.name!r}"
        try:
            ipaddress.ip_address(self.bind_address)
        except ValueError:
            raise SipConfigError(f"{where}: bind_address {self.bind_address!r} is not an IP address") from None
        if self.media_address:
            try:
                ipaddress.ip_address(self.media_address)
            except ValueError:
                raise SipConfigError(f"{where}: media_address {self.media_address!r} is not an IP address") from None
        if not 0 <= self.port <= 65535:
            raise SipConfigError(f"{where}: port {self.port} is out of range")
        if not self.transports:
            raise SipConfigError(f"{where}: at least one transport is needed")
        for t in self.transports:
            if t not in SUPPORTED_TRANSPORTS:
                raise SipConfigError(f"{where}: transport {t!r} is not supported (use udp or tcp; TLS is not "
                                     "offered with the pjsua2 wheel's OpenSSL 1.0.2)")
        if len(set(self.transports)) != len(self.transports):
            raise SipConfigError(f"{where}: transports {self.transports} has a duplicate")
        if not self.codecs:
            raise SipConfigError(f"{where}: at least one codec is needed")
        for c in self.codecs:
            if c not in SUPPORTED_CODECS:
                raise SipConfigError(f"{where}: codec {c!r} is not supported (only G.711: PCMU, PCMA)")
        if not 0 <= self.rtp_port <= 65535 or self.rtp_port_range < 0:
            raise SipConfigError(f"{where}: rtp_port/rtp_port_range out of range")
        if self.rtp_port and self.rtp_port_range and self.rtp_port_range < 4:
            raise SipConfigError(f"{where}: rtp_port_range must leave room for at least two calls (>= 4)")
        if self.rtp_timeout_s < 0:
            raise SipConfigError(f"{where}: rtp_timeout_s must be >= 0")
        acl: list[IpNetwork] = []
        for peer in self.allowed_peers:
            try:
                acl.append(ipaddress.ip_network(peer, strict=False))
            except ValueError:
                raise SipConfigError(f"{where}: allowed peer {peer!r} is not an address or CIDR") from None
        if self.registrar:
            if not self.registrar.lower().startswith(("sip:", "sips:")):
                raise SipConfigError(f"{where}: registrar must be a SIP URI (sip:host[:port]), got {self.registrar!r}")
            if not self.username:
                raise SipConfigError(f"{where}: registration needs a username")
            host = _host_of_uri(self.registrar)
            try:
                for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP):
                    acl.append(ipaddress.ip_network(info[4][0]))
            except OSError as e:
                raise SipConfigError(f"{where}: cannot resolve registrar host {host!r}: {e}") from None
            if self.register_expires_s < 60:
                raise SipConfigError(f"{where}: register_expires_s must be >= 60")
        elif not acl:
            raise SipConfigError(f"{where}: an IP-authenticated trunk needs allowed_peers (or set a registrar)")
        object.__setattr__(self, "acl", tuple(dict.fromkeys(acl)))

    # ------------------------------------------------------------------ derived
    @property
    def registration(self) -> bool:
        return bool(self.registrar)

    @property
    def rtp_address(self) -> str:
        return self.media_address or self.bind_address

    @property
    def account_domain(self) -> str:
        if self.domain:
            return self.domain
        if self.registrar:
            return _host_of_uri(self.registrar)
        return self.bind_address

    def allows(self, address: str) -> bool:
        """True if an INVITE from ``address`` ("ip", "ip:port" or "[v6]:port") may reach the engine."""
        ip = address_ip(address)
        if ip is None:
            return False
        return any(ip in net for net in self.acl)


def address_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of "ip", "ip:port" or "[v6]:port"; None if it is not an address."""
    a = address.strip()
    if a.startswith("["):
        a = a[1:a.find("]")] if "]" in a else a[1:]
    elif a.count(":") == 1:
        a = a.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip

