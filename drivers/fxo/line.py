"""FxoLine: the path-B :class:`~drivers.line.Line` (FXO board on a serial port + a sound card).

Threads
-------
* **control** (``fxo-control-NAME``) owns the serial port: reads and parses the board's messages
  (:mod:`drivers.fxo.protocol`), runs the call logic (:mod:`drivers.fxo.calllogic`) with
  ``time.monotonic()``, carries out its effects (hook commands, events to the sink, media
  commands), applies ``answer``/``hangup`` requests queued by other threads, and reopens the port
  with backoff when the board vanishes. Events reach the sink on this thread.
* **media** (``fxo-media-NAME``) runs :class:`~drivers.fxo.pump.MediaPump`; it reports caller ID,
  disconnect tones, silence and a stalled sound card back to the control thread through a queue.
* PortAudio's callback thread (:mod:`drivers.fxo.audio`) only copies into and out of rings.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.fxo.audio import PortAudioDuplex
from drivers.fxo.calllogic import CidWindow, Effect, Emit, FxoCallLogic, Media, Phase, Resync, SetHook
from drivers.fxo.config import CidTiming, FxoConfig
from drivers.fxo.detectors import caller_id_decoder, tone_supervisor
from drivers.fxo.protocol import (
    PROTOCOL,
    Ack,
    Command,
    Error,
    Garbage,
    Hello,
    Loop,
    Message,
    MessageDecoder,
    Polarity,
    Ring,
    Status,
    encode_command,
)
from drivers.fxo.pump import (
    Attach,
    AudioFlowing,
    AudioStalled,
    CallerIdFound,
    Detach,
    Finding,
    ListenCallerId,
    MediaPump,
    SilenceFound,
    ToneFound,
)
from drivers.fxo.seams import CallerIdDecoderFactory, SupervisionDetectorFactory
from drivers.line import EventSink, FramePort, LineError, LineEvent, LineStatus, RemoteHangup, deliver
from media.ring import FrameRing

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.02  # the control loop's tick when the board is quiet


class _DeviceLost(Exception):
    pass


@dataclass(frozen=True)
class _Answer:
    leg_id: str
    port: FramePort


@dataclass(frozen=True)
class _Hangup:
    leg_id: str


@dataclass(frozen=True)
class _Seize:
    leg_id: str
    port: FramePort


@dataclass
class ControlCounters:
    garbage_lines: int = 0  # lines from the board that were not valid FXO/1 messages
    board_errors: int = 0  # ERR replies
    device_lost: int = 0
    reconnects: int = 0
    board_resets: int = 0  # unsolicited HELLO


def open_serial(url: str, baudrate: int, timeout: float) -> Any:
    """pyserial port for a path or URL (``serial_for_url``); imported here only."""
    import serial

    # exclusive (an flock): a second user of the board (another daemon, gatewayd levels) is refused
    return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=1.0, exclusive=True)


class FxoLine:
    kind = "fxo"

    def __init__(self, config: FxoConfig, *, cid_decoder_factory: CallerIdDecoderFactory | None = caller_id_decoder,
                 supervision_factory: SupervisionDetectorFactory | None = tone_supervisor,
                 serial_opener: Callable[[str, int, float], Any] = open_serial) -> None:
        self.cfg = config
        self.name = config.name
        self._open_serial = serial_opener
        self.logic = FxoCallLogic(config)
        self.counters = ControlCounters()
        self._sink: EventSink | None = None
        self._ser: Any = None
        self._decoder = MessageDecoder()
        self._requests: queue.SimpleQueue[_Answer | _Hangup | _Seize] = queue.SimpleQueue()
        self._findings: queue.SimpleQueue[Finding] = queue.SimpleQueue()
        self._ports: dict[str, FramePort] = {}
        self._stop = threading.Event()
        self._control: threading.Thread | None = None
        self._media_thread: threading.Thread | None = None
        self._started = False
        self.board: Hello | None = None
        self._last_heard = 0.0  # monotonic time of the last valid message from the board
        self._keepalive_due: float | None = None  # STATUS sent, reply expected by then
        self._cid_listening = False  # what the pump was last told about the caller-ID decoder
        wake = threading.Event()
        self.capture: FrameRing[bytes] = FrameRing(config.capture_ring_frames)
        self.playout: FrameRing[bytes] = FrameRing(config.capture_ring_frames)
        self.audio = PortAudioDuplex(config, self.capture, self.playout, wake)
        cid = None
        if config.cid != CidTiming.NONE:
            if cid_decoder_factory is None:
                log.warning("%s: no caller-ID decoder: calls are offered without caller ID", config.name)
            else:
                cid = cid_decoder_factory(config.cid_standard)
        sup = (supervision_factory(config.country)
               if supervision_factory is not None and config.hangup_on_tones else None)
        self.pump = MediaPump(config, self.capture, self.playout, wake, self._findings.put, cid, sup,
                              last_callback=lambda: self.audio.last_callback,
                              set_playout_active=self._set_playout_active)

    # ------------------------------------------------------------------ Line interface
    def start(self, sink: EventSink) -> None:
        if self._started:
            raise LineError(f"{self.name}: already started")
        self._sink = sink
        self.audio.open()
        try:
            self._connect()
        except LineError:
            self.audio.close()
            raise
        self._started = True
        self._media_thread = threading.Thread(target=self.pump.run, name=f"fxo-media-{self.name}", daemon=True)
        self._control = threading.Thread(target=self._run, name=f"fxo-control-{self.name}", daemon=True)
        self._media_thread.start()
        self._control.start()
        self._emit(LineStatus(self.name, "", "up", self._board_text()))

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._stop.set()
        if self._control is not None:
            self._control.join(5.0)
        self.pump.stop()
        if self._media_thread is not None:
            self._media_thread.join(5.0)
        self.audio.close()

    def answer(self, leg_id: str, port: FramePort) -> None:
        self._requests.put(_Answer(leg_id, port))

    def hangup(self, leg_id: str, sip_code: int = 0) -> None:
        self._requests.put(_Hangup(leg_id))

    def seize(self, leg_id: str, port: FramePort) -> None:
        """Go off-hook on the idle line (no call) with ``port`` attached, as ``gatewayd levels`` does to
        measure the line; ``hangup(leg_id)`` ends it. Refused (``CallFailed``) while a call rings."""
        self._requests.put(_Seize(leg_id, port))

    def send_digits(self, leg_id: str, digits: str, tone_ms: int = 250, gap_ms: int = 100) -> bool:
        return False  # an FXO line has no out-of-band digits: the runtime plays them in-band

    def dial(self, leg_id: str, to: str, caller_id: str, headers: Mapping[str, str], port: FramePort,
             timeout_s: float) -> None:
        raise LineError(f"{self.name}: this FXO line takes inbound calls only")

    # ------------------------------------------------------------------ status
    def stats(self) -> dict[str, int]:
        """Counters for metrics / ``gatewayd status``."""
        return {
            "garbage_lines": self._decoder.garbage,
            "board_errors": self.counters.board_errors,
            "device_lost": self.counters.device_lost,
            "reconnects": self.counters.reconnects,
            "board_resets": self.counters.board_resets,
            "capture_overflows": self.capture.dropped,
            "playout_underruns": self.playout.underruns,
            "playout_dropped": self.playout.dropped,
            "audio_callbacks": self.audio.callbacks,
            "audio_input_overflows": self.audio.input_overflows,
            "audio_output_underflows": self.audio.output_underflows,
            "frames": self.pump.counters.frames,
            "rx_frames": self.pump.counters.rx_frames,
            "port_errors": self.pump.counters.port_errors,
            "short_ring_pulses": self.logic.counters.short_ring_pulses,
            "cpc_glitches": self.logic.counters.cpc_glitches,
        }

    # ------------------------------------------------------------------ connection
    def _board_text(self) -> str:
        b = self.board
        return f"{self.cfg.device} {b.protocol} fw={b.firmware}" if b else self.cfg.device

    def _connect(self) -> None:
        """Open the port and handshake; raises LineError. The board ends up on-hook."""
        try:
            ser = self._open_serial(self.cfg.device, self.cfg.baudrate, READ_TIMEOUT_S)
        except Exception as e:  # SerialException, OSError, ValueError from a bad URL
            raise LineError(f"{self.name}: cannot open {self.cfg.device}: {e}") from e
        try:
            try:
                ser.dtr = True  # a USB-CDC board may use DTR as "host present"
            except OSError as e:
                if e.errno not in (errno.ENOTTY, errno.EINVAL):
                    raise
                log.debug("%s: modem-control lines not available on %s", self.name, self.cfg.device)
            ser.reset_input_buffer()
            self._ser = ser
            self._decoder = MessageDecoder()
            hello = self._request(Command.HELLO, Hello)
            assert isinstance(hello, Hello)
            if hello.protocol != PROTOCOL:
                raise LineError(f"{self.name}: board speaks {hello.protocol}, this driver {PROTOCOL}")
            self.board = hello
            status = self._request(Command.STATUS, Status)
            assert isinstance(status, Status)
            if status.off_hook:
                log.warning("%s: board was off-hook at connect; hanging up", self.name)
                self._request(Command.HOOK_ON, Ack)
        except (LineError, _DeviceLost) as e:
            self._close_port()
            raise LineError(f"{self.name}: {self.cfg.device}: {e}") from e
        self.logic.reset()
        self._apply([])  # an idle line may listen for caller ID
        self._last_heard, self._keepalive_due = time.monotonic(), None
        log.info("%s: connected to %s", self.name, self._board_text())

    def _request(self, command: Command, want: type) -> Message:
        """Send a command and wait for its reply (only while connecting: nothing else runs)."""
        self._write(encode_command(command))
        deadline = time.monotonic() + self.cfg.handshake_timeout_s
        while time.monotonic() < deadline:
            if self._stop.is_set():
                raise LineError("stopping")
            for item in self._decoder.feed(self._read()):
                if isinstance(item, want) and not isinstance(item, Garbage):
                    return item
                if isinstance(item, Error):
                    raise LineError(f"board answered {command.value!r} with ERR {item.code} {item.text}".rstrip())
                log.debug("%s: while connecting, ignored %r", self.name, item)
        raise LineError(f"no reply to {command.value!r} within {self.cfg.handshake_timeout_s} s")

    def _read(self) -> bytes:
        try:
            data: bytes = self._ser.read(max(1, self._ser.in_waiting))
        except Exception as e:  # SerialException / OSError when the device vanished
            raise _DeviceLost(str(e)) from e
        return data

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except Exception as e:
            raise _DeviceLost(str(e)) from e

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception as e:  # already gone
                log.debug("%s: closing the port: %s", self.name, e)

    # ------------------------------------------------------------------ the control thread
    def _run(self) -> None:
        backoff = self.cfg.reopen_backoff_s[0]
        next_attempt = 0.0
        recovering_sent = False
        while not self._stop.is_set():
            if self._ser is None:
                now = time.monotonic()
                if now >= next_attempt:
                    if not recovering_sent:
                        self._emit(LineStatus(self.name, "", "recovering", f"reopening {self.cfg.device}"))
                        recovering_sent = True
                    try:
                        self._connect()
                    except LineError as e:
                        log.info("%s: reconnect failed (%s); next try in %.2f s", self.name, e, backoff)
                        next_attempt = now + backoff
                        backoff = min(backoff * 2, self.cfg.reopen_backoff_s[1])
                    else:
                        self.counters.reconnects += 1
                        backoff = self.cfg.reopen_backoff_s[0]
                        recovering_sent = False
                        self._emit(LineStatus(self.name, "", "up", self._board_text()))
                        continue
                self._service(time.monotonic())
                self._stop.wait(min(0.05, max(0.0, next_attempt - time.monotonic())))
                continue
            try:
                data = self._read()
                now = time.monotonic()
                for item in self._decoder.feed(data):
                    self._on_board(item, now)
                self._service(now)
                self._keepalive(now)
            except _DeviceLost as e:
                self._device_lost(str(e))
        self._shutdown()

    def _service(self, now: float) -> None:
        """Requests from other threads, findings from the media thread, then the timers."""
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                break
            if isinstance(req, _Answer):
                self._ports[req.leg_id] = req.port
                self._apply(self.logic.answer(req.leg_id, now))
            elif isinstance(req, _Seize):
                self._ports[req.leg_id] = req.port
                self._apply(self.logic.seize(req.leg_id, now))
            else:
                self._ports.pop(req.leg_id, None)
                self._apply(self.logic.hangup(req.leg_id, now))
        while True:
            try:
                finding = self._findings.get_nowait()
            except queue.Empty:
                break
            self._on_finding(finding, now)
        self._apply(self.logic.poll(now, self.pump.pts))

    def _keepalive(self, now: float) -> None:
        """A hung board sends nothing: when idle and quiet, STATUS must be answered in time."""
        if not self.cfg.keepalive_s or self._ser is None:
            return
        if self._keepalive_due is not None:
            if now >= self._keepalive_due:
                self._keepalive_due = None
                log.warning("%s: no reply to STATUS; reopening the board", self.name)
                self._close_port()
            return
        if self.logic.phase == Phase.IDLE and now - self._last_heard >= self.cfg.keepalive_s:
            self._write(encode_command(Command.STATUS))
            self._keepalive_due = now + self.cfg.hook_ack_timeout_s

    def _on_board(self, item: Message | Garbage, now: float) -> None:
        if isinstance(item, Garbage):
            n = self._decoder.garbage
            if n <= 10 or n % 100 == 0:
                log.info("%s: garbage from the board (%s, %d so far): %r", self.name, item.reason, n, item.raw[:40])
            return
        self._last_heard, self._keepalive_due = now, None
        if isinstance(item, Ring):
            self._apply(self.logic.ring(item.on, item.board_ms, now))
        elif isinstance(item, Loop):
            self._apply(self.logic.loop(item.present, now, self.pump.pts))
        elif isinstance(item, Polarity):
            self._apply(self.logic.polarity(item.positive, now, self.pump.pts))
        elif isinstance(item, Ack):
            self._apply(self.logic.hook_ack(item.command == Command.HOOK_OFF, now))
        elif isinstance(item, Error):
            self.counters.board_errors += 1
            log.warning("%s: board error %s %s", self.name, item.code, item.text)
            if self.logic.phase in (Phase.ANSWERING, Phase.RELEASING):
                self._apply(self.logic.hook_error(item.code, now))
        elif isinstance(item, Hello):
            self.counters.board_resets += 1
            log.warning("%s: the board restarted (%s fw=%s)", self.name, item.protocol, item.firmware)
            self.board = item
            self._apply(self.logic.board_reset(now))
        # Status outside the handshake: nothing to do

    def _on_finding(self, finding: Finding, now: float) -> None:
        if isinstance(finding, CallerIdFound):
            self._cid_listening = False  # the pump stops listening after a message
            self._apply(self.logic.caller_id(finding.record, now))
        elif isinstance(finding, ToneFound | SilenceFound):
            c = self.logic.call
            if c is None or c.leg_id != finding.leg_id:
                return  # about a leg that has ended meanwhile
            if isinstance(finding, ToneFound):
                self._apply(self.logic.tone(finding.hit, now))
            else:
                self._apply(self.logic.silence(finding.start_pts, now))
        elif isinstance(finding, AudioStalled):
            log.error("%s: no audio from the sound card for %.1f s", self.name, finding.seconds)
            self._emit(LineStatus(self.name, "", "down", "sound card stalled"))
            self._apply(self.logic.audio_lost(now))
        elif isinstance(finding, AudioFlowing):
            self._emit(LineStatus(self.name, "", "up", "sound card flowing again"))

    def _apply(self, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Emit):
                if isinstance(e.event, RemoteHangup):
                    self._ports.pop(e.event.leg_id, None)
                self._emit(e.event)
            elif isinstance(e, SetHook):
                if self._ser is not None:
                    self._write(encode_command(Command.HOOK_OFF if e.off_hook else Command.HOOK_ON))
            elif isinstance(e, Media):
                if e.leg_id is None:
                    self.pump.command(Detach())
                else:
                    port = self._ports.get(e.leg_id)
                    if port is not None:
                        self.pump.command(Attach(e.leg_id, port))
            elif isinstance(e, CidWindow):
                self.pump.command(ListenCallerId(e.open))  # opening restarts the decoder
                self._cid_listening = e.open
            elif isinstance(e, Resync):
                log.warning("%s: %s; reopening the board", self.name, e.reason)
                self._close_port()
        want = self.logic.cid_listening  # e.g. DTMF CLIP: listening whenever the line is idle
        if want != self._cid_listening:
            self.pump.command(ListenCallerId(want))
            self._cid_listening = want

    def _device_lost(self, detail: str) -> None:
        self.counters.device_lost += 1
        log.error("%s: %s lost: %s", self.name, self.cfg.device, detail)
        self._close_port()
        self._apply(self.logic.device_lost(time.monotonic(), detail))
        self._emit(LineStatus(self.name, "", "down", f"{self.cfg.device} lost: {detail}"))

    def _shutdown(self) -> None:
        """stop(): end the call, put the line on-hook, release the port."""
        c = self.logic.call
        if c is not None and self.logic.phase in (Phase.ANSWERING, Phase.CONNECTED):
            self.pump.command(Detach())
            if self._ser is not None:
                with contextlib.suppress(_DeviceLost):
                    self._write(encode_command(Command.HOOK_ON))
        self.logic.reset()
        self._close_port()
        self._emit(LineStatus(self.name, "", "down", "stopped"))

    def _set_playout_active(self, on: bool) -> None:
        self.audio.playout_active = on

    def _emit(self, event: LineEvent) -> None:
        deliver(self._sink, event, self.name)
