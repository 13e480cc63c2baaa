"""``ModemLine``: the :class:`~drivers.line.Line` of a V.253 USB voice modem (path A).

One thread owns the serial port (opened with ``serial.serial_for_url``, so a pty path or a test
URL works as well as ``/dev/ttyACM0``). It moves bytes and time between the port and the sans-IO
:class:`~drivers.modem.engine.ModemEngine`, which holds all the behaviour:

    loop: read (up to 10 ms) → engine.receive → commands from other threads → engine.handle_timer
          → flush if asked → write → deliver events to the sink

No XON/XOFF on audio: pyserial's ``xonxoff`` turns on IXON and IXOFF together, which would eat 0x11
and 0x13 out of the received audio; RTS/CTS (``rtscts``) or nothing. The modem-control lines
(DTR/RTS/CD ...) are optional: on a pty their ioctls fail with ENOTTY (errno 25) and are treated as
"not available".

A vanished device (``SerialException``/``OSError`` on read or write, e.g. the USB stick unplugged or
re-enumerated) ends the call with ``RemoteHangup(reason="device-lost")``, reports ``LineStatus``
``down``, then the port is re-opened with exponential backoff (``recovering``) and the modem
re-initialised (``up``). Use a stable udev symlink as the device so that re-enumeration is seen.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drivers.line import EventSink, FramePort, LineError, LineEvent, LineStatus, deliver
from drivers.modem.config import ModemConfig
from drivers.modem.engine import ModemEngine, State, SupervisorFactory

log = logging.getLogger(__name__)

READ_WINDOW_S = 0.01  # the loop's tick: one read waits at most this long
STOP_GRACE_S = 3.0  # stop(): time allowed to go on-hook cleanly

__all__ = ["ModemConfig", "ModemLine"]


class ModemLine:
    kind = "modem"

    def __init__(self, config: ModemConfig, *, supervisors: Sequence[SupervisorFactory] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = config.name
        self.config = config
        self.engine = ModemEngine(config, supervisors)
        self._clock = clock
        self._sink: EventSink | None = None
        self._commands: queue.SimpleQueue[tuple[str, str, FramePort | None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._start_error = ""
        self._starting = False
        self._thread: threading.Thread | None = None
        self.modem_lines_available: bool | None = None  # DTR/RTS ioctls work (None: not tried yet)
        self.reopens = 0

    # ------------------------------------------------------------------------------ Line
    def start(self, sink: EventSink) -> None:
        if self._thread is not None:
            raise LineError(f"{self.name}: already started")
        self._sink = sink
        try:
            port = self._open()
        except Exception as e:  # serial.SerialException, OSError, ValueError (bad URL)
            raise LineError(f"{self.name}: cannot open {self.config.device}: {e}") from e
        self._starting = True
        self._thread = threading.Thread(target=self._run, args=(port,), name=f"modem-{self.name}", daemon=True)
        self._thread.start()
        ok = self._ready.wait(self.config.start_timeout_s)
        self._starting = False
        if not ok or self._start_error:
            self.stop()
            raise LineError(f"{self.name}: modem on {self.config.device} did not initialise: "
                            f"{self._start_error or 'timed out'}")

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(STOP_GRACE_S + 2.0)
        self._thread = None

    def answer(self, leg_id: str, port: FramePort) -> None:
        self._commands.put(("answer", leg_id, port))

    def hangup(self, leg_id: str, sip_code: int = 0) -> None:
        self._commands.put(("hangup", leg_id, None))

    def seize(self, leg_id: str, port: FramePort) -> None:
        """Go off-hook on the idle line (no call) with ``port`` attached, as ``gatewayd levels`` does to
        measure the line; ``hangup(leg_id)`` ends it. Refused (``CallFailed``) while a call rings."""
        self._commands.put(("seize", leg_id, port))

    def send_digits(self, leg_id: str, digits: str, tone_ms: int = 250, gap_ms: int = 100) -> bool:
        return False  # +VTS only works in command state; the runtime plays DTMF in-band instead

    def dial(self, leg_id: str, to: str, caller_id: str, headers: Mapping[str, str], port: FramePort,
             timeout_s: float) -> None:
        raise LineError(f"{self.name}: the voice-modem line takes inbound calls only")

    # ------------------------------------------------------------------------------ the port
    def _open(self) -> Any:
        import serial  # the hardware library is imported by the adapter that needs it

        # exclusive: an flock on the device, so that a second user (another daemon, gatewayd levels) is
        # refused with "Could not exclusively lock port" instead of stealing half of the bytes
        port = serial.serial_for_url(self.config.device, baudrate=self.config.baudrate, timeout=READ_WINDOW_S,
                                     write_timeout=2.0, rtscts=self.config.rtscts, xonxoff=False, dsrdtr=False,
                                     exclusive=True)
        self.modem_lines_available = _set_line(port, "dtr", True)
        if not self.config.rtscts:
            _set_line(port, "rts", True)
        return port

    # ------------------------------------------------------------------------------ the thread
    def _run(self, port: Any) -> None:
        import serial

        eng = self.engine
        first, largest = self.config.reopen_backoff_s
        backoff = first
        retry_at = 0.0
        eng.start(self._clock())
        self._deliver()
        stopping_since: float | None = None
        while True:
            now = self._clock()
            if self._stop.is_set():
                if stopping_since is None:
                    stopping_since = now
                    eng.shutdown(now)
                if port is None or eng.idle or now - stopping_since > STOP_GRACE_S:
                    break
            if port is None:
                if self._starting or now < retry_at:
                    time.sleep(0.02)
                    continue
                try:
                    port = self._open()
                    self.reopens += 1
                    eng.device_opened(self._clock())
                except (serial.SerialException, OSError, ValueError) as e:
                    log.info("%s: re-open failed: %s (next try in %.1f s)", self.name, e, backoff)
                    retry_at = now + backoff
                    backoff = min(largest, backoff * 2)
                    continue
            try:
                data = port.read(4096)
                now = self._clock()
                if data:
                    eng.receive(data, now)
                self._drain_commands(now)
                eng.handle_timer(now)
                if eng.take_flush():
                    port.reset_input_buffer()
                    port.reset_output_buffer()
                out = eng.data_to_send()
                if out:
                    port.write(out)
            except (serial.SerialException, OSError) as e:
                log.warning("%s: device lost: %s", self.name, e)
                _close(port)
                port = None
                eng.device_lost(self._clock(), f"device lost: {e}")
                retry_at = self._clock() + backoff
            except Exception:
                log.exception("%s: driver error; re-opening the device", self.name)
                _close(port)
                port = None
                eng.device_lost(self._clock(), "driver error")
                retry_at = self._clock() + backoff
            if eng.status == "up":
                backoff = first
            if port is not None and eng.needs_reopen:
                _close(port)
                port = None
                retry_at = self._clock() + backoff
                backoff = min(largest, backoff * 2)
            self._deliver()
        if port is not None:
            _close(port)
        self._deliver()

    def _drain_commands(self, now: float) -> None:
        while True:
            try:
                what, leg_id, fport = self._commands.get_nowait()
            except queue.Empty:
                return
            if what == "answer" and fport is not None:
                self.engine.answer(leg_id, fport, now)
            elif what == "seize" and fport is not None:
                self.engine.seize(leg_id, fport, now)
            elif what == "hangup":
                self.engine.hangup(leg_id, now)

    def _deliver(self) -> None:
        while (ev := self.engine.next_event()) is not None:
            if isinstance(ev, LineStatus) and not self._ready.is_set():
                if ev.state == "up":
                    self._ready.set()
                elif ev.state == "down" and self._starting:
                    self._start_error = ev.detail
                    self._ready.set()
            self._emit(ev)

    def _emit(self, ev: LineEvent) -> None:
        deliver(self._sink, ev, self.name)

    @property
    def state(self) -> State:
        return self.engine.state


def _set_line(port: Any, name: str, value: bool) -> bool:
    """Set DTR/RTS if the device has it; False when not (a pty: ENOTTY, errno 25)."""
    try:
        setattr(port, name, value)
        return True
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EINVAL):
            log.debug("no %s on this device (%s)", name.upper(), e)
            return False
        raise


def _close(port: Any) -> None:
    try:
        port.close()
    except (OSError, ValueError):
        log.debug("closing the port failed", exc_info=True)
