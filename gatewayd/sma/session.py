"""One SIP-media-application transaction (call), as a sans-IO state machine.

Modelled on aioquic's ``QuicConnection``: the runtime feeds inputs with an explicit time and collects
effects; the session never reads a clock, sleeps, or does I/O::

    session = Session(config, transaction_id)
    session.handle(InboundCall(...), now)          # any gatewayd.sma.events input
    while (effect := session.next_effect()) is not None:
        execute(effect)                            # gatewayd.sma.effects: InvokeHandler, StartAction...
    deadline = session.get_timer()                 # earliest time the session wants handle_timer(now)
    ...
    session.handle_timer(now)                      # handler timeouts, 30 s ring timeout, dial timeouts

``now`` is the runtime's monotonic clock in seconds (any origin, never going back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gatewayd.sma.effects import Effect
from gatewayd.sma.events import Event

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
MAX_ACTIONS = 10
MAX_ATTRIBUTE_KEYS = 100
MAX_ATTRIBUTES_BYTES = 20 * 1024


@dataclass(frozen=True)
class SessionConfig:
    """Per-application settings of a session (from the application and rule that routed the call)."""

    sip_media_application_id: str
    aws_account_id: str = "000000000000"
    aws_region: str = "us-east-1"
    #: SipRuleId shown for inbound calls (absent on outbound calls, as in Chime).
    sip_rule_id: str | None = None
    #: Handler invocation timeout; one retry follows, then the call is hung up with 480.
    handler_timeout_s: float = 20.0
    #: An inbound call nobody answered is rejected (480) after this long.
    ring_timeout_s: float = 30.0
    #: Invocations per transaction; past it the call is hung up with 480.
    max_invocations: int = 1000
    #: RecordAudio without DurationInSeconds stops after this long.
    max_record_duration_s: int = 3600
    #: Bucket names actions may use; None: any (the runtime's store decides).
    buckets: frozenset[str] | None = None


class Session:
    """The Chime SMA contract for one call. See the module docstring for the calling pattern."""

    def __init__(self, config: SessionConfig, transaction_id: str) -> None:
        self.config = config
        self.transaction_id = transaction_id
        self._effects: list[Effect] = []
        self._ended = False

    # -------------------------------------------------------------------------------- public API
    def handle(self, event: Event, now: float) -> None:
        """Take one input; effects become available through :meth:`next_effect`."""
        raise NotImplementedError

    def get_timer(self) -> float | None:
        """The earliest ``now`` at which :meth:`handle_timer` must be called, or None."""
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now`` (calling it early or twice is harmless)."""
        raise NotImplementedError

    def next_effect(self) -> Effect | None:
        """The next effect to carry out, in order, or None."""
        return self._effects.pop(0) if self._effects else None

    def drain(self) -> list[Effect]:
        """All pending effects, in order."""
        out, self._effects = self._effects, []
        return out

    @property
    def ended(self) -> bool:
        """True once EndTransaction was emitted; further events are ignored."""
        return self._ended
