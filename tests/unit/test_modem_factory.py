"""The daemon's modem line entry becomes a ModemLine with the driver's config (nothing opened yet)."""

from drivers.modem.config import POLARITY_EVENT
from drivers.modem.driver import ModemLine
from gatewayd.config import ModemLineConfig
from gatewayd.factories import build_line


def test_modem_line_takes_a_polarity_reversal_as_a_hang_up_by_default() -> None:
    on = build_line(ModemLineConfig(type="modem", name="m", device="/dev/x"), None)  # type: ignore[arg-type]
    off = build_line(ModemLineConfig(type="modem", name="m", device="/dev/x", hangup_on_polarity=False),
                     None)  # type: ignore[arg-type]
    assert isinstance(on, ModemLine) and isinstance(off, ModemLine)
    assert POLARITY_EVENT in on.config.hangup_events and POLARITY_EVENT not in off.config.hangup_events


def test_a_line_measurement_ignores_polarity_like_tones() -> None:
    from gatewayd.factories import _modem_line

    line = _modem_line(ModemLineConfig(type="modem", name="m", device="/dev/x"), supervise=False)
    assert isinstance(line, ModemLine) and POLARITY_EVENT not in line.config.hangup_events
    assert {c for c, _ in line.config.hangup_events} >= {"l"}  # a loop-current drop still ends the leg
