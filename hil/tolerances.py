"""Timing tolerances and disconnect budgets, per backend and path (HARDWARE.md §5.5: one shared table).

``TOLERANCE_S`` is the slack on any timing assertion (the emulators' ``tolerance_s``; the lab backend
takes its own from the rig file). The emulators run in real time through ptys, FIFOs and RTP with a
real daemon (scheduling and 20 ms framing, a few frames of buffering); the lab adds the ATA's jitter
buffer and the line (±150 ms on the bench, HARDWARE.md §5.5, plus 40–100 ms of jitter buffer, §5.2).
``disconnect_budget_s`` is how long after the far end hangs up gatewayd may take to end the call, by
signal: what its detector needs, plus the handler, plus the tolerance.
"""

from __future__ import annotations

from hil.simulator import Disconnect

TOLERANCE_S: dict[tuple[str, str], float] = {
    ("emulator", "modem"): 0.3,
    ("emulator", "fxo"): 0.3,
    ("emulator", "sip"): 0.3,
}

#: what gatewayd's detectors need to decide, before any tolerance (seconds)
DETECTION_S: dict[Disconnect, float] = {
    Disconnect.CPC: 0.6,  # cpc_min_ms (the DUT is configured at 2/3 of the CPC the simulator sends)
    Disconnect.POLARITY: 0.1,
    Disconnect.BUSY: 2.5,  # two cadence cycles (modem DSP: busy_detect_s 2 s)
    Disconnect.REORDER: 2.5,
    Disconnect.DIAL_TONE: 1.5,
    Disconnect.BYE: 0.1,
}

#: the handler's HANGUP comes after the line's decision: one invocation (in-process) and the event loop
HANDLER_S = 0.5


def tolerance(backend: str, path: str) -> float:
    return TOLERANCE_S.get((backend, path), 0.5)


def disconnect_budget_s(how: Disconnect, tolerance_s: float, silence_hangup_s: float = 0.0) -> float:
    """How long after the far end left gatewayd may take to report HANGUP."""
    detect = silence_hangup_s if how is Disconnect.SILENCE else DETECTION_S[how]
    return detect + HANDLER_S + tolerance_s
