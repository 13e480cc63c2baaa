"""The handler-invoker interface and what the three invokers share.

An invoker takes a Chime event (a JSON-able dict) and a timeout, and gives back an
:data:`InvokeResult`: the handler's response (parsed JSON) or a typed error. It never raises and never
blocks its caller: :meth:`Invoker.submit` returns a ``concurrent.futures.Future`` that always completes
(at the latest at the timeout) with a result, never with an exception. An asyncio control loop awaits
:meth:`Invoker.invoke_async`; a thread may call the blocking :meth:`Invoker.invoke`.

The work runs on the invoker's own worker threads. A handler still running at its timeout cannot be
stopped (Python threads cannot be killed): its worker stays busy until it returns, its result is
dropped, and it is counted in :attr:`Invoker.stuck`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gatewayd.sma.events import HandlerFailed, HandlerResponded, InvocationError

log = logging.getLogger(__name__)

__all__ = ["InvocationError", "InvokeError", "InvokeOk", "InvokeResult", "Invoker", "as_event", "parse_json_strict"]


@dataclass(frozen=True)
class InvokeOk:
    """The handler answered: ``response`` is its parsed JSON (any JSON value)."""

    response: Any
    duration_s: float
    request_id: str


@dataclass(frozen=True)
class InvokeError:
    """No usable answer. ``kind`` maps onto the engine's HandlerFailed.error.

    For FUNCTION_ERROR, ``error_type`` is Lambda's ``errorType`` (the exception class name,
    ``Runtime.ImportModuleError``, ``Runtime.MarshalError``...) and ``stack_trace`` its ``stackTrace``.
    """

    kind: InvocationError
    message: str
    error_type: str | None = None
    duration_s: float = 0.0
    request_id: str = ""
    stack_trace: tuple[str, ...] = ()


InvokeResult = InvokeOk | InvokeError


def as_event(invocation_id: int, result: InvokeResult) -> HandlerResponded | HandlerFailed:
    """The engine input for the outcome of ``InvokeHandler(invocation_id, ...)``."""
    if isinstance(result, InvokeOk):
        return HandlerResponded(invocation_id, result.response)
    detail = f"{result.error_type}: {result.message}" if result.error_type else result.message
    return HandlerFailed(invocation_id, result.kind, detail)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_strict(data: bytes | str) -> Any:
    """``json.loads`` that refuses NaN / Infinity (not JSON, though Python writes them)."""
    return json.loads(data, parse_constant=_no_constants)


class _Deadlines:
    """One thread that fires callbacks at monotonic deadlines (the invokers' timeouts)."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def at(self, deadline: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), callback))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # a callback only completes a future; never let the thread die
                log.exception("deadline callback failed")


class Invoker(ABC):
    """Base of the three invokers: a bounded worker pool plus a timeout watcher.

    Subclasses implement :meth:`_call`, which runs on a worker thread, may block until ``deadline``
    (``time.monotonic()`` seconds) and returns a result (exceptions become TRANSPORT errors).
    """

    def __init__(self, target: str, *, workers: int = 4) -> None:
        self.target = target
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"invoker-{self.kind}")
        self._deadlines = _Deadlines(f"invoker-{self.kind}-timeouts")
        self._lock = threading.Lock()
        self.stuck = 0  # workers still busy with an invocation that already timed out
        self.invocations = 0

    kind = "invoker"

    def submit(self, payload: Mapping[str, Any], timeout: float) -> Future[InvokeResult]:
        """Start an invocation; the future completes with a result within ``timeout`` seconds."""
        start = time.monotonic()
        deadline = start + timeout
        request_id = str(uuid.uuid4())
        outer: Future[InvokeResult] = Future()
        outer.set_running_or_notify_cancel()
        try:
            body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            outer.set_result(InvokeError(InvocationError.TRANSPORT, f"payload is not JSON: {exc}",
                                         request_id=request_id))
            return outer
        with self._lock:
            self.invocations += 1
        done = threading.Lock()

        def finish(result: InvokeResult) -> bool:
            with done:
                if outer.done():
                    return False
                outer.set_result(result)
                return True

        def on_timeout() -> None:
            if finish(InvokeError(InvocationError.TIMEOUT, f"no response within {timeout:.2f} s",
                                  duration_s=time.monotonic() - start, request_id=request_id)):
                with self._lock:
                    self.stuck += 1
                log.warning("%s: invocation %s timed out after %.2f s", self.target, request_id, timeout)

        def work() -> None:
            try:
                result = self._call(body, deadline, request_id)
            except Exception as exc:  # an adapter bug must still complete the future
                log.exception("%s: invocation %s failed", self.target, request_id)
                result = InvokeError(InvocationError.TRANSPORT, f"{type(exc).__name__}: {exc}",
                                     duration_s=time.monotonic() - start, request_id=request_id)
            if not finish(result):
                with self._lock:
                    self.stuck -= 1
                log.info("%s: late result of %s dropped", self.target, request_id)

        try:
            self._pool.submit(work)
        except RuntimeError as exc:  # pool shut down
            outer.set_result(InvokeError(InvocationError.TRANSPORT, f"invoker closed: {exc}", request_id=request_id))
            return outer
        self._deadlines.at(deadline, on_timeout)
        return outer

    def invoke(self, payload: Mapping[str, Any], timeout: float) -> InvokeResult:
        """Blocking form of :meth:`submit` (not on the control loop)."""
        return self.submit(payload, timeout).result()

    async def invoke_async(self, payload: Mapping[str, Any], timeout: float) -> InvokeResult:
        """Awaitable form of :meth:`submit` for the asyncio control loop."""
        return await asyncio.wrap_future(self.submit(payload, timeout))

    def close(self) -> None:
        """Stop taking invocations; running handlers are not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._deadlines.close()

    def __enter__(self) -> Invoker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _call(self, body: bytes, deadline: float, request_id: str) -> InvokeResult:
        """Invoke with the JSON ``body``; block at most until ``deadline``."""
