"""Routing in the style of Chime SIP rules: which SIP media applications take an inbound call.

Rules are tried in order; the first enabled rule whose trigger matches wins. Its target applications
are returned in priority order: when the first one's handler fails before the call is answered, the
next one gets the call (Chime's fail-over between applications).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gatewayd.config import ApplicationConfig, Config, RuleConfig


@dataclass(frozen=True)
class Route:
    rule: RuleConfig
    applications: tuple[ApplicationConfig, ...]


def normalise_number(n: str) -> str:
    """Digits with a leading ``+`` kept: ``"+1 (555) 010-0000"`` → ``"+15550100000"``."""
    n = n.strip()
    if n.lower().startswith(("sip:", "tel:")):
        n = n.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    digits = re.sub(r"[^\d*#]", "", n)
    return ("+" + digits) if n.startswith("+") else digits


def _number_matches(pattern: str, called: str) -> bool:
    if pattern == "*":
        return True
    p, c = normalise_number(pattern), normalise_number(called)
    # "+15550100000" matches a called "15550100000" and vice versa
    return p == c or p.lstrip("+") == c.lstrip("+")


class Router:
    def __init__(self, cfg: Config) -> None:
        self._rules = [r for r in cfg.rules if not r.disabled]
        self._apps = {a.name: a for a in cfg.applications}

    def route(self, line: str, called: str, request_uri_host: str = "") -> Route | None:
        for r in self._rules:
            if r.trigger_type == "ToPhoneNumber":
                ok = _number_matches(r.trigger_value, called)
            elif r.trigger_type == "RequestUriHostname":
                ok = r.trigger_value == "*" or (bool(request_uri_host)
                                                and r.trigger_value.lower() == request_uri_host.lower())
            else:
                ok = r.trigger_value in ("*", line)
            if ok:
                targets = sorted(r.target_applications, key=lambda t: t.priority)
                return Route(r, tuple(self._apps[t.application] for t in targets if t.application in self._apps))
        return None
