"""Run one call on a virtual exchange against a handler, on media time (``gatewayd simulate``).

The daemon's own runtime does the work — routing, the SMA engine, the media worker, the action
executors, the recording store — with the virtual exchange as the only line and a virtual clock, so
what a scenario shows is what the daemon would do, minus the hardware.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.virtual import Caller, FarEnd, VirtualExchange
from gatewayd.config import ApplicationConfig, Config, RuleConfig, RuleTarget
from gatewayd.invokers import Invoker
from gatewayd.runtime.calls import Call, CallManager, Services
from gatewayd.runtime.clock import VirtualClock
from gatewayd.runtime.routing import Router
from gatewayd.runtime.services import MediaFactories, Prompts, RecordingStore
from gatewayd.runtime.worker import Activity, MediaWorker

log = logging.getLogger(__name__)


@dataclass
class Exchange:
    """One handler invocation: the event sent and what came back (a response, or an error)."""

    event: Mapping[str, Any]
    response: Any


@dataclass
class SimulationResult:
    transcript: list[Exchange] = field(default_factory=list)
    end_reasons: list[str] = field(default_factory=list)
    exchange: VirtualExchange | None = None
    seconds: float = 0.0


class Simulation:
    def __init__(self, app: ApplicationConfig, invoker: Invoker, store: RecordingStore, prompts: Prompts, *,
                 media: MediaFactories | None = None, far_ends: Mapping[str, FarEnd] | None = None,
                 default_far_end: FarEnd | None = None, max_seconds: float = 600.0,
                 line_name: str = "virtual", on_exchange: Callable[[Exchange], None] | None = None) -> None:
        self.app = app
        self.invoker = invoker
        self.store = store
        self.prompts = prompts
        self.media = media or MediaFactories()
        self.far_ends = dict(far_ends or {})
        self.default_far_end = default_far_end
        self.max_seconds = max_seconds
        self.line_name = line_name
        self.on_exchange = on_exchange

    async def run(self, caller: Caller) -> SimulationResult:
        loop = asyncio.get_running_loop()
        result = SimulationResult()
        activity = Activity()
        worker = MediaWorker(activity)
        worker.start()
        clock = VirtualClock(loop, activity)
        exchange = VirtualExchange(self.line_name, far_ends=self.far_ends, default_far_end=self.default_far_end,
                                   max_seconds=self.max_seconds, pace=clock.pace)
        result.exchange = exchange
        cfg = Config(applications=(self.app,), rules=(RuleConfig(
            name="simulation", trigger_type="Line", trigger_value="*",
            target_applications=(RuleTarget(self.app.name),)),))

        def invoked(call: Call, payload: Mapping[str, Any], response: Any) -> None:
            ex = Exchange(payload, response)
            result.transcript.append(ex)
            if self.on_exchange is not None:
                self.on_exchange(ex)

        def ended(call: Call, reason: str) -> None:
            result.end_reasons.append(reason)

        services = Services(invoker_for=lambda _app: self.invoker, prompts=self.prompts, store=self.store,
                            media=self.media, on_invocation=invoked, on_call_end=ended)
        mgr = CallManager(loop, {self.line_name: exchange}, Router(cfg), services, worker, clock=clock,
                          activity=activity)
        exchange.start(mgr.sink_for(self.line_name))
        try:
            exchange.offer(caller)
            await asyncio.to_thread(exchange.done.wait)
            # the last events (HANGUP) and uploads after the exchange went quiet
            for _ in range(400):
                if not mgr.calls and not mgr.background:
                    break
                await asyncio.sleep(0.025)
            if mgr.calls:
                log.warning("simulation ended with %d call(s) still open", len(mgr.calls))
                await mgr.drain(5.0)
        finally:
            exchange.stop()
            worker.stop()
        result.seconds = exchange.t
        return result
