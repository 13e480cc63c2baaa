"""The daemon's fxo line entry becomes an FxoLine with the driver's config (nothing opened yet)."""

from drivers.fxo.config import CidTiming
from drivers.fxo.line import FxoLine
from gatewayd.config import FxoLineConfig
from gatewayd.factories import build_line


def test_fxo_config_maps_onto_the_driver() -> None:
    lc = FxoLineConfig(type="fxo", name="pstn", control_device="/dev/serial/by-id/fxo", audio_device="USB Audio",
                       number="+15550100", audio_rate=48000, rings_before_answer=3, country="us",
                       caller_id="bell202", cpc_min_ms=500, hangup_on_polarity=True, silence_hangup_s=20.0,
                       max_call_s=600.0)
    line = build_line(lc, None)  # type: ignore[arg-type]
    assert isinstance(line, FxoLine) and line.name == "pstn" and line.kind == "fxo"
    c = line.cfg
    assert (c.device, c.audio_device, c.audio_rate, c.called_number) == ("/dev/serial/by-id/fxo", "USB Audio",
                                                                           48000, "+15550100")
    assert (c.rings_to_answer, c.country, c.cid, c.cid_standard) == (3, "us", CidTiming.AFTER_RING, "bell202")
    assert (c.cpc_min_ms, c.hangup_on_polarity, c.silence_timeout_s, c.max_call_s) == (500, True, 20.0, 600.0)
    assert line.pump.cid_decoder is not None and line.pump.supervision is not None


def test_uk_caller_id_comes_before_the_ring_and_none_means_none() -> None:
    uk = build_line(FxoLineConfig(type="fxo", name="uk", control_device="/dev/x", audio_device="a", country="uk",
                                  caller_id="v23"), None)  # type: ignore[arg-type]
    assert isinstance(uk, FxoLine) and (uk.cfg.cid, uk.cfg.cid_standard) == (CidTiming.BEFORE_RING, "v23")
    off = build_line(FxoLineConfig(type="fxo", name="x", control_device="/dev/x", audio_device="a",
                                   caller_id="none"), None)  # type: ignore[arg-type]
    assert isinstance(off, FxoLine) and off.cfg.cid == CidTiming.NONE and off.pump.cid_decoder is None


def test_dtmf_and_auto_caller_id_and_cid_after_ring() -> None:
    dtmf = build_line(FxoLineConfig(type="fxo", name="nl", control_device="/dev/x", audio_device="a", country="nl",
                                    caller_id="dtmf"), None)  # type: ignore[arg-type]
    assert isinstance(dtmf, FxoLine) and (dtmf.cfg.cid, dtmf.cfg.cid_standard) == (CidTiming.BEFORE_RING, "dtmf")
    assert dtmf.cfg.cid_on_idle and dtmf.logic.cid_listening
    auto = build_line(FxoLineConfig(type="fxo", name="us", control_device="/dev/x", audio_device="a",
                                    caller_id="auto", cid_after_ring=2, rings_before_answer=3),
                      None)  # type: ignore[arg-type]
    assert isinstance(auto, FxoLine)
    assert (auto.cfg.cid, auto.cfg.cid_standard, auto.cfg.cid_after_ring) == (CidTiming.AFTER_RING,
                                                                            "bell202+dtmf", 2)
    de = build_line(FxoLineConfig(type="fxo", name="de", control_device="/dev/x", audio_device="a", country="de",
                                  caller_id="auto"), None)  # type: ignore[arg-type]
    assert isinstance(de, FxoLine) and de.cfg.cid_standard == "v23+dtmf"

