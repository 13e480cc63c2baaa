"""Logging: every record goes through a queue, so no thread (least of all the media path) waits on I/O.

``setup_logging`` installs a QueueHandler on the root logger and a listener thread that writes to the
journal (systemd-python's JournalHandler, structured fields ``CALL_ID``, ``TRANSACTION_ID``, ``LINE``)
when running under systemd with the library present, and to stderr otherwise. Call context comes
from :data:`call_context` (a contextvar the runtime sets in each call's task) or from ``extra=``.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import queue
import sys
from typing import Any

CONTEXT_FIELDS = ("CALL_ID", "TRANSACTION_ID", "LINE")
call_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("call_context", default=None)


class ContextFilter(logging.Filter):
    """Copies the current call context onto the record (fields absent from ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = call_context.get()
        if ctx:
            for k in CONTEXT_FIELDS:
                if k in ctx and not hasattr(record, k):
                    setattr(record, k, ctx[k])
        return True


class StderrFormatter(logging.Formatter):
    """``time level logger [LINE CALL_ID]: message`` — the context in brackets when present."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k.lower()}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None))
        base = super().format(record)
        return f"{base} [{ctx}]" if ctx else base


def _journal_handler() -> logging.Handler | None:
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        return None  # not started by systemd
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    h: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="gatewayd")
    return h


class Logging:
    def __init__(self, listener: logging.handlers.QueueListener, handler: logging.Handler) -> None:
        self.listener = listener
        self.handler = handler

    def stop(self) -> None:
        self.listener.stop()


def setup_logging(level: str | int = "info", target: logging.Handler | None = None) -> Logging:
    """Route the root logger through a queue to ``target`` (default: journal or stderr)."""
    handler = target or _journal_handler()
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(StderrFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    qh = logging.handlers.QueueHandler(q)
    qh.addFilter(ContextFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(qh)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    listener = logging.handlers.QueueListener(q, handler, respect_handler_level=True)
    listener.start()
    return Logging(listener, handler)
