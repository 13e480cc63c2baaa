"""The SIP media application engine: a sans-IO session per call (no threads, sockets, numpy or boto3).

Public API: :class:`Session` and :class:`SessionConfig` (``gatewayd.sma.session``), the inputs in
``gatewayd.sma.events``, the outputs in ``gatewayd.sma.effects`` and the normalised actions the runtime
executes in ``gatewayd.sma.actions``.
"""

from gatewayd.sma.session import Session, SessionConfig, SessionStats

__all__ = ["Session", "SessionConfig", "SessionStats"]
