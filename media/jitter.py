"""A small adaptive jitter buffer for bridging two clocks, and a two-way bridge built on it.

When a call is bridged (CallAndBridge: an FXO leg to a SIP leg, or two SIP legs), each leg's device owns
its own 20 ms clock. Frames produced on one clock are consumed on the other: the buffer absorbs the
phase jitter between them and follows their drift by dropping or inserting a frame.

:class:`JitterBuffer` is pure and stateful. One thread puts (``put`` only appends to a deque, which is
atomic in CPython), one thread gets; every decision is taken in :meth:`JitterBuffer.get`, so no lock is
needed. Its whole state is returned by :meth:`JitterBuffer.state` so that tests can assert it after
each step.

Policy (all counts in frames):

* Priming: until ``target`` frames are buffered, ``get`` returns silence (each counts as inserted).
* Underrun: ``get`` on an empty primed buffer returns silence, counts an underrun and an inserted frame,
  raises ``target`` by one (up to ``max_target``) and primes again.
* Drift, producer faster: over each window of ``window`` gets the fewest frames left after a get are
  tracked; if that stayed above ``target`` the oldest frame is dropped (one per window at most).
* Relaxing: after ``relax_windows`` windows in a row without underrun, ``target`` goes down by one (not
  below ``min_target``); the next windows then drop the surplus.
* Overflow: more than ``capacity`` frames buffered (the consumer stalled): the oldest are dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from media.frame import FRAME_SAMPLES, AudioFrame, Samples


@dataclass(frozen=True)
class JitterState:
    depth: int  # frames buffered
    target: int  # depth the buffer primes to
    primed: bool
    window_pos: int  # gets counted in the current window
    window_min: int  # fewest frames left after a get in the current window (-1: none yet)
    calm_windows: int  # consecutive windows without underrun
    put: int  # frames received
    got: int  # frames handed out (real or inserted)
    dropped: int  # frames thrown away (drift or overflow)
    inserted: int  # silent frames handed out (priming or underrun)
    underruns: int


class JitterBuffer:
    def __init__(self, min_target: int = 2, max_target: int = 6, capacity: int = 16, window: int = 50,
                 relax_windows: int = 10, frame_samples: int = FRAME_SAMPLES) -> None:
        if not 1 <= min_target <= max_target < capacity:
            raise ValueError("need 1 <= min_target <= max_target < capacity")
        if window < 1 or relax_windows < 1:
            raise ValueError("window and relax_windows must be >= 1")
        self.min_target = min_target
        self.max_target = max_target
        self.capacity = capacity
        self.window = window
        self.relax_windows = relax_windows
        self._silence = np.zeros(frame_samples, dtype=np.int16)
        self._q: deque[Samples] = deque()
        self._put = 0  # written by the producer only
        self.target = min_target
        self.primed = False
        self.window_pos = 0
        self.window_min = -1
        self.calm_windows = 0
        self.got = 0
        self.dropped = 0
        self.inserted = 0
        self.underruns = 0

    # producer side
    def put(self, samples: Samples) -> None:
        self._q.append(samples)
        self._put += 1

    # consumer side
    def get(self) -> Samples:
        q = self._q
        self.got += 1
        while len(q) > self.capacity:
            q.popleft()
            self.dropped += 1
        if not self.primed:
            if len(q) < self.target:
                self.inserted += 1
                return self._silence
            self.primed = True
            self.window_pos = 0
            self.window_min = -1
        depth = len(q)
        if depth == 0:
            self.underruns += 1
            self.inserted += 1
            self.target = min(self.target + 1, self.max_target)
            self.primed = False
            self.calm_windows = 0
            self.window_pos = 0
            self.window_min = -1
            return self._silence
        left = depth - 1  # frames still buffered once this one is out
        self.window_min = left if self.window_min < 0 else min(self.window_min, left)
        self.window_pos += 1
        if self.window_pos >= self.window:
            self.calm_windows += 1
            if self.calm_windows >= self.relax_windows and self.target > self.min_target:
                self.target -= 1
                self.calm_windows = 0
            surplus = self.window_min > self.target
            self.window_pos = 0
            self.window_min = -1
            if surplus and len(q) > 1:
                q.popleft()
                self.dropped += 1
        return q.popleft()

    def state(self) -> JitterState:
        return JitterState(depth=len(self._q), target=self.target, primed=self.primed, window_pos=self.window_pos,
                           window_min=self.window_min, calm_windows=self.calm_windows, put=self._put,
                           got=self.got, dropped=self.dropped, inserted=self.inserted, underruns=self.underruns)


class BridgeEnd:
    """One side of a :class:`Bridge`: a FramePort (push_rx / pull_tx / tx_active) for one leg."""

    def __init__(self, inbox: JitterBuffer, outbox: JitterBuffer) -> None:
        self._in = inbox  # what this leg receives goes here, for the other leg
        self._out = outbox  # what the other leg received, to send on this one
        self.frames = 0

    def push_rx(self, frame: AudioFrame) -> None:
        self._in.put(frame.samples)
        self.frames += 1

    def pull_tx(self, pts: int) -> Samples:
        return self._out.get()

    @property
    def tx_active(self) -> bool:
        return True


class Bridge:
    """Two legs joined through one jitter buffer per direction: ``a`` and ``b`` are their FramePorts."""

    def __init__(self, **jitter: int) -> None:
        self.a_to_b = JitterBuffer(**jitter)
        self.b_to_a = JitterBuffer(**jitter)
        self.a = BridgeEnd(self.a_to_b, self.b_to_a)
        self.b = BridgeEnd(self.b_to_a, self.a_to_b)
