"""Prometheus metrics: counters, gauges and histograms with labels, and the text exposition format.

Updates are plain attribute arithmetic under the GIL (no locks on hot paths); the HTTP endpoint
serves ``/metrics`` from a small threaded server bound to the configured (loopback) address.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

LabelValues = tuple[str, ...]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, doc: str, labels: Iterable[str] = ()) -> None:
        self.name = name
        self.doc = doc
        self.labels = tuple(labels)

    def _key(self, values: dict[str, str]) -> LabelValues:
        if set(values) != set(self.labels):
            raise ValueError(f"{self.name}: labels {sorted(values)} != {sorted(self.labels)}")
        return tuple(str(values[k]) for k in self.labels)

    def _labelstr(self, key: LabelValues, extra: str = "") -> str:
        parts = [f'{k}="{_escape(v)}"' for k, v in zip(self.labels, key, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {self.doc}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(s + "\n" for s in self.samples())


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, doc: str, labels: Iterable[str] = ()) -> None:
        super().__init__(name, doc, labels)
        self._v: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        k = self._key(labels)
        self._v[k] = self._v.get(k, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._v.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{self._labelstr(k)} {_fmt(v)}" for k, v in sorted(self._v.items())]


class Gauge(_Metric):
    """A value set directly, or read from a callback at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, doc: str, labels: Iterable[str] = (),
                 read: Callable[[], dict[LabelValues, float] | float] | None = None) -> None:
        super().__init__(name, doc, labels)
        self._v: dict[LabelValues, float] = {}
        self._read = read

    def set(self, value: float, **labels: str) -> None:
        self._v[self._key(labels)] = value

    def value(self, **labels: str) -> float:
        return self._current().get(self._key(labels), 0.0)

    def _current(self) -> dict[LabelValues, float]:
        if self._read is None:
            return dict(self._v)
        r = self._read()
        return {(): float(r)} if isinstance(r, int | float) else r

    def samples(self) -> list[str]:
        return [f"{self.name}{self._labelstr(k)} {_fmt(v)}" for k, v in sorted(self._current().items())]


class Histogram(_Metric):
    kind = "histogram"
    DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

    def __init__(self, name: str, doc: str, labels: Iterable[str] = (),
                 buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, doc, labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[LabelValues, list[int]] = {}
        self._sum: dict[LabelValues, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        k = self._key(labels)
        counts = self._counts.setdefault(k, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sum[k] = self._sum.get(k, 0.0) + value

    def count(self, **labels: str) -> int:
        return sum(self._counts.get(self._key(labels), []))

    def samples(self) -> list[str]:
        out: list[str] = []
        for k, counts in sorted(self._counts.items()):
            acc = 0
            for le, c in zip((*self.buckets, math.inf), counts, strict=True):
                acc += c
                le_label = 'le="' + _fmt(le) + '"'
                out.append(f"{self.name}_bucket{self._labelstr(k, le_label)} {acc}")
            out.append(f"{self.name}_sum{self._labelstr(k)} {_fmt(self._sum[k])}")
            out.append(f"{self.name}_count{self._labelstr(k)} {acc}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        m = Counter(name, doc, labels)
        self.add(m)
        return m

    def gauge(self, name: str, doc: str, labels: Iterable[str] = (),
              read: Callable[[], dict[LabelValues, float] | float] | None = None) -> Gauge:
        m = Gauge(name, doc, labels, read)
        self.add(m)
        return m

    def histogram(self, name: str, doc: str, labels: Iterable[str] = (),
                  buckets: Iterable[float] = Histogram.DEFAULT_BUCKETS) -> Histogram:
        m = Histogram(name, doc, labels, buckets)
        self.add(m)
        return m

    def render(self) -> str:
        return "".join(m.render() for m in self._metrics.values())


class MetricsServer:
    """Serves ``GET /metrics`` on ``host:port`` (port 0 picks a free one; see ``address``)."""

    def __init__(self, registry: Registry, host: str, port: int) -> None:
        reg = registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = reg.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
