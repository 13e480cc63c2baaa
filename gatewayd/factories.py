"""Turning configuration into the daemon's parts: lines, the recording store, invokers, DSP factories.

The one place that knows which class implements which config entry. Hardware and cloud libraries
are imported inside the function that needs them, so a Pi without pjsua2 (or boto3, or PyAudio)
runs every line that does not need it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from drivers.line import Line, LineError
from gatewayd.config import (
    ApplicationConfig,
    Config,
    FxoLineConfig,
    LineConfig,
    LocalBucketConfig,
    ModemLineConfig,
    SipLineConfig,
)
from gatewayd.invokers import Invoker, make_invoker
from gatewayd.runtime.services import MediaFactories
from gatewayd.store import LocalDirectoryConfig, RecordingStore, S3EndpointConfig, StoreConfig, StoreEvent
from gatewayd.store.config import BackendConfig

log = logging.getLogger(__name__)


class InvokerCache:
    """One invoker per application (a warm in-process module stays loaded between calls)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[Any, ...], Invoker] = {}

    @staticmethod
    def _key(app: ApplicationConfig) -> tuple[Any, ...]:
        return (app.handler, tuple(sorted(app.environment.items())), app.endpoint_url, app.aws_region)

    def get(self, app: ApplicationConfig) -> Invoker:
        k = self._key(app)
        inv = self._by_key.get(k)
        if inv is None:
            inv = build_invoker(app)
            self._by_key[k] = inv
        return inv

    def retain(self, apps: Iterable[ApplicationConfig]) -> list[Invoker]:
        """After a reload: forget the invokers no application uses any more and return them; the caller
        closes each once no call in progress holds it (closing frees its threads and environment)."""
        keep = {self._key(a) for a in apps}
        return [self._by_key.pop(k) for k in [k for k in self._by_key if k not in keep]]

    async def close(self) -> None:
        for inv in self._by_key.values():
            inv.close()
        self._by_key.clear()


def build_invoker(app: ApplicationConfig) -> Invoker:
    return make_invoker(app.handler, environment=app.environment, region=app.aws_region,
                        account_id=app.aws_account_id, endpoint_url=app.endpoint_url)


def store_config(cfg: Config) -> StoreConfig:
    """The recording store's configuration: spool under the state directory, one backend per bucket."""
    assert cfg.state_dir is not None
    buckets: dict[str, BackendConfig] = {}
    for b in cfg.buckets:
        if isinstance(b, LocalBucketConfig):
            assert b.root is not None
            buckets[b.name] = LocalDirectoryConfig(b.root)
        else:
            buckets[b.name] = S3EndpointConfig(endpoint_url=b.endpoint_url, region_name=b.region,
                                               profile_name=b.profile, addressing_style=b.addressing_style)
    default: BackendConfig | None = None  # "reject"
    if cfg.media.unknown_buckets == "local":
        default = LocalDirectoryConfig(cfg.state_dir / "buckets")
    elif cfg.media.unknown_buckets == "s3":
        default = S3EndpointConfig()
    return StoreConfig(spool_dir=cfg.state_dir / "spool", buckets=buckets, default_backend=default,
                       upload_wait=cfg.media.upload_wait_s)


def build_store(cfg: Config, listener: Callable[[StoreEvent], None] | None = None) -> RecordingStore:
    return RecordingStore(store_config(cfg), listener=listener)


def fetcher(store: RecordingStore) -> Callable[[str, str], bytes]:
    """Reads an object (a prompt) from whichever backend holds its bucket."""
    def fetch(bucket: str, key: str) -> bytes:
        data: bytes = store.backend_for(bucket).get_object(bucket, key)
        return data
    return fetch


def build_line(lc: LineConfig, cfg: Config, *, supervise: bool = True) -> Line:
    """The driver of one configured line. ``supervise=False`` (line measurements, ``gatewayd levels``):
    an analog line does not take a dial, busy or reorder tone or a long silence for a remote hang-up —
    only a loop-current drop (or an extension picked up) still ends a leg."""
    if isinstance(lc, ModemLineConfig):
        return _modem_line(lc, supervise)
    if isinstance(lc, FxoLineConfig):
        return _fxo_line(lc, supervise)
    if isinstance(lc, SipLineConfig):
        from drivers.sip.line import SipLine

        return SipLine(lc.trunk_config())
    raise LineError(f"unknown line type {lc!r}")


def _modem_line(lc: ModemLineConfig, supervise: bool = True) -> Line:
    from drivers.modem.config import DEFAULT_HANGUP_EVENTS, POLARITY_EVENT, ModemConfig
    from drivers.modem.driver import ModemLine
    from drivers.modem.supervision import ToneSupervisor
    from media.progress import ProgressDetector

    country = lc.country
    events = DEFAULT_HANGUP_EVENTS
    if not lc.modem_silence_s or not supervise:
        events = tuple(e for e in events if e[0] not in ("s", "q"))
    if not supervise:
        events = tuple(e for e in events if e[0] not in ("b", "d"))
    if lc.hangup_on_polarity and supervise:
        events = (*events, POLARITY_EVENT)
    mc = ModemConfig(device=lc.device, name=lc.name, number=lc.number, baudrate=lc.baudrate, rtscts=lc.rtscts,
                     profile=None if lc.profile == "auto" else lc.profile, country=lc.gci,
                     extra_init=lc.extra_init, offer_after_rings=lc.rings_before_answer,
                     answer_after_rings=lc.rings_before_answer, hangup_events=events,
                     modem_silence_s=lc.modem_silence_s if supervise else 0.0,
                     silence_timeout_s=lc.silence_hangup_s if supervise else 0.0, max_call_s=lc.max_call_s)
    supervisors = [lambda: ToneSupervisor(lambda: ProgressDetector(country))] if lc.detect_tones and supervise else []
    return ModemLine(mc, supervisors=supervisors)


def _fxo_line(lc: FxoLineConfig, supervise: bool = True) -> Line:
    """FXO board + sound card (drivers/fxo). FSK caller ID: the UK sends it before the first ring after a
    line reversal (BT SIN227), everyone else after ring ``cid_after_ring``; DTMF CLIP comes before the first
    ring; ``auto`` listens for the country's FSK (Bell 202 in the us, V.23 elsewhere) and DTMF CLIP.
    Disconnect tones per ``country``."""
    from drivers.fxo.config import CidTiming, FxoConfig
    from drivers.fxo.line import FxoLine

    standard = {"none": "bell202", "auto": ("bell202" if lc.country == "us" else "v23") + "+dtmf"}.get(
        lc.caller_id, lc.caller_id)
    if lc.caller_id == "none":
        cid = CidTiming.NONE
    else:  # DTMF CLIP comes before the first ring (a line reversal, if any, opens the window early)
        cid = CidTiming.BEFORE_RING if lc.country == "uk" or lc.caller_id == "dtmf" else CidTiming.AFTER_RING
    fc = FxoConfig(name=lc.name, device=lc.control_device, audio_device=lc.audio_device, audio_rate=lc.audio_rate,
                   called_number=lc.number, rings_to_answer=lc.rings_before_answer, country=lc.country, cid=cid,
                   cid_standard=standard, cid_after_ring=lc.cid_after_ring, cpc_min_ms=lc.cpc_min_ms,
                   hangup_on_polarity=lc.hangup_on_polarity and supervise,
                   silence_timeout_s=lc.silence_hangup_s if supervise else 0.0, hangup_on_tones=supervise,
                   max_call_s=lc.max_call_s)
    return FxoLine(fc)


def dtmf_inband(cfg: Config) -> dict[str, bool]:
    """Which lines run the in-band DTMF detector on received audio."""
    return {lc.name: lc.dtmf_inband for lc in cfg.lines}


def media_factories(cfg: Config) -> MediaFactories:
    from media.dtmf import DtmfDetector, DtmfSender

    def generate(digits: str, tone_ms: int, gap_ms: int) -> Any:
        sender = DtmfSender(digits, tone_ms=tone_ms, gap_ms=gap_ms)
        return sender.read(sender.total_samples)

    backend = cfg.media.voicefocus_backend  # one of the config model's VoiceFocusBackend values

    def load_suppressor() -> None:
        # scipy (~18 MB, 0.2 s) and the backend's weights: on the first VoiceFocus action only, off the media
        # path; a backend that cannot be built fails that action, not the daemon
        from media.voicefocus import create

        create(backend)

    def suppressor() -> Any:
        from media.voicefocus import create  # already loaded by load_suppressor: a dictionary lookup

        return create(backend, enabled=False)  # created off: the first enable cross-fades in over one frame

    return MediaFactories(dtmf_detector=DtmfDetector, dtmf_generator=generate, suppressor=suppressor,
                          load_suppressor=load_suppressor)
