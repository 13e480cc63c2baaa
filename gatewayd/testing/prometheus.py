"""Reading the daemon's Prometheus metrics from outside (tests and benchmarks): scrape, parse, look up.

Parses the text exposition format as :mod:`gatewayd.metrics` writes it (``name{label="value",...} number``;
``#`` lines are comments).
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


@dataclass
class Metrics:
    """Samples by metric name: a list of (labels, value)."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
        return sum(v for lab, v in self.samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """``name``'s values summed by the given label keys."""
        out: dict[tuple[str, ...], float] = {}
        for lab, v in self.samples.get(name, []):
            k = tuple(lab.get(key, "") for key in keys)
            out[k] = out.get(k, 0.0) + v
        return out


def parse(text: str) -> Metrics:
    m = Metrics()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a metrics sample: {line!r}")
        name, labels, value = match.groups()
        lab = {k: _unescape(v) for k, v in _LABEL.findall(labels or "")}
        m.samples.setdefault(name, []).append((lab, float(value)))
    return m


def scrape(address: str, timeout: float = 5.0) -> Metrics:
    """GET ``http://ADDRESS/metrics`` (``address`` as in the config: ``host:port``)."""
    return scrape_url(f"http://{address}/metrics", timeout)


def scrape_url(url: str, timeout: float = 5.0) -> Metrics:
    """GET and parse a metrics endpoint by its full URL (a rig file's ``dut.metrics_url``)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return parse(r.read().decode())
