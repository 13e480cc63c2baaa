"""Bounded frame rings between threads.

One producer and one consumer; ``put`` and ``get`` never block. Overflow drops the *oldest* frame
and counts it (capture overflow), an empty ``get`` returns ``None`` and counts an underrun when the
caller asks it to (playout underrun). ``collections.deque`` append/popleft are atomic in CPython, so
no lock is taken on the media path.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameRing(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._q: deque[T] = deque()
        self.dropped = 0
        self.underruns = 0

    def put(self, item: T) -> bool:
        """Append; if full, drop the oldest item first. Returns False when something was dropped."""
        dropped = False
        while len(self._q) >= self.capacity:
            try:
                self._q.popleft()
            except IndexError:  # consumer emptied it meanwhile
                break
            self.dropped += 1
            dropped = True
        self._q.append(item)
        return not dropped

    def get(self, count_underrun: bool = False) -> T | None:
        try:
            return self._q.popleft()
        except IndexError:
            if count_underrun:
                self.underruns += 1
            return None

    def clear(self) -> None:
        self._q.clear()

    def __len__(self) -> int:
        return len(self._q)
