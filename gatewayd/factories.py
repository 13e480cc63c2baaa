"""Turning configuration into the daemon's parts: lines, the recording store, invokers, DSP factories.

The one place that knows which class implements which config entry. Hardware and cloud libraries
are imported inside the function that needs them, so a Pi without pjsua2 (or boto3, or PyAudio)
runs every line that does not need it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from drivers.line import Line, LineError
from gatewayd.config import ApplicationConfig, Config, FxoLineConfig, LineConfig, ModemLineConfig, SipLineConfig
from gatewayd.invokers import Invoker, make_invoker
from gatewayd.metrics import Registry
from gatewayd.runtime.services import MediaFactories

log = logging.getLogger(__name__)


class InvokerCache:
    """One invoker per application (a warm in-process module stays loaded between calls)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[Any, ...], Invoker] = {}

    @staticmethod
    def _key(app: ApplicationConfig) -> tuple[Any, ...]:
        return (app.handler, tuple(sorted(app.environment.items())), app.endpoint_url, app.aws_region)

    def get(self, app: ApplicationConfig) -> Invoker:
        k = self._key(app)
        inv = self._by_key.get(k)
        if inv is None:
            inv = build_invoker(app)
            self._by_key[k] = inv
        return inv

    def retain(self, apps: Iterable[ApplicationConfig]) -> None:
        """After a reload: forget invokers no application uses any more (closed lazily)."""
        keep = {self._key(a) for a in apps}
        for k in [k for k in self._by_key if k not in keep]:
            self._by_key.pop(k)

    async def close(self) -> None:
        for inv in self._by_key.values():
            inv.close()
        self._by_key.clear()


def build_invoker(app: ApplicationConfig) -> Invoker:
    return make_invoker(app.handler, environment=app.environment, region=app.aws_region,
                        account_id=app.aws_account_id, endpoint_url=app.endpoint_url)


def build_store(cfg: Config, registry: Registry) -> Any:
    raise RuntimeError("the recording store is not available yet")


def store_buckets(cfg: Config) -> Any:
    return cfg.buckets


def build_line(lc: LineConfig, cfg: Config) -> Line:
    if isinstance(lc, SipLineConfig | ModemLineConfig | FxoLineConfig):
        raise LineError(f"line type {lc.type!r} is not available yet")
    raise LineError(f"unknown line type {lc!r}")


def media_factories(cfg: Config) -> MediaFactories:
    return MediaFactories()
