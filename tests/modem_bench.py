"""A virtual-clock bench: the modem engine wired to the emulated device, byte for byte, no threads.

Each step advances time by ``dt``: the engine's timers run, what it wrote goes to the device, and
every chunk the device sends (split inside DLE pairs on purpose) goes back to the engine separately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from drivers.emulators.modem import ModemDevice
from drivers.line import LineEvent, SilencePort
from drivers.modem.config import ModemConfig
from drivers.modem.engine import ModemEngine, State, SupervisorFactory
from media.frame import Samples


class Bench:
    def __init__(self, emu: str = "usr5637", *, dt: float = 0.005, supervisors: Sequence[SupervisorFactory] = (),
                 ring_on_s: float = 0.4, ring_off_s: float = 0.8, cid_before_ring: bool = False,
                 start: bool = True, engine_every: int = 1, **config: Any) -> None:
        self.t0 = 100.0
        self.k = 0
        self.dt = dt
        self.engine_every = engine_every  # the engine's timer runs every Nth step (a slow shell loop)
        self.dev = ModemDevice(emu, ring_on_s=ring_on_s, ring_off_s=ring_off_s, cid_before_ring=cid_before_ring)
        self.dev.now = self.t0
        defaults: dict[str, Any] = {"device": "virtual", "name": "line1", "ring_timeout_s": 3.0, "cid_settle_s": 0.3}
        self.config = ModemConfig(**{**defaults, **config})
        self.eng = ModemEngine(self.config, supervisors)
        self.events: list[LineEvent] = []
        self.flushes = 0
        self.chunks = 0
        if start:
            self.eng.start(self.now)
            self.run_until(lambda: self.eng.state is State.READY, 10.0)

    @property
    def now(self) -> float:
        return self.t0 + self.k * self.dt

    def step(self) -> None:
        self.k += 1
        now = self.now
        if self.k % self.engine_every == 0:
            self.eng.handle_timer(now)
        self._io(now)

    def _io(self, now: float) -> None:
        if self.eng.take_flush():
            self.flushes += 1
        out = self.eng.data_to_send()
        if out:
            self.dev.receive(out, now)
        for chunk in self.dev.poll(now):
            self.chunks += 1
            self.eng.receive(chunk, now)
        while (ev := self.eng.next_event()) is not None:
            self.events.append(ev)

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.dt)):
            self.step()

    def run_until(self, pred: Callable[[], bool], timeout: float) -> float:
        """Step until ``pred()``; returns the virtual time it took. Fails the test on timeout."""
        start = self.now
        while not pred():
            if self.now - start > timeout:
                raise AssertionError(f"not reached in {timeout} s of virtual time")
            self.step()
        return self.now - start

    def of(self, kind: type[LineEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def answer_next_call(self, port: SilencePort) -> None:
        """Answer as soon as an IncomingCall shows up (from the runtime's side)."""
        from drivers.line import IncomingCall
        self.run_until(lambda: bool(self.of(IncomingCall)), 30.0)
        self.eng.answer(self.of(IncomingCall)[-1].leg_id, port, self.now)

    def in_call(self) -> bool:
        return self.eng.state is State.CALL

    def with_config(self, **kw: Any) -> ModemConfig:
        return replace(self.config, **kw)


def received(port: SilencePort) -> Samples:
    """Everything the driver pushed, laid out by pts (frames are contiguous by construction)."""
    if not port.received:
        return np.zeros(0, dtype=np.int16)
    pts = [f.pts for f in port.received]
    assert pts == list(range(0, len(pts) * 160, 160)), "frames must be contiguous from pts 0"
    return np.concatenate([f.samples for f in port.received])
