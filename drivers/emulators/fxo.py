"""An FXO board, the exchange behind it and the far-end caller, for tests, HIL and ``gatewayd simulate``.

What the driver sees is exactly what it would see with hardware:

* **control**: a pseudo-terminal speaking FXO/1 (drivers/fxo/README.md, "FXO board control protocol"), reached through
  a stable symlink (like ``/dev/serial/by-id/...``) so that :meth:`FxoEmulator.vanish` and
  :meth:`FxoEmulator.reappear` behave like a USB board being unplugged and plugged back in;
* **audio**: a real ALSA PCM (:class:`~drivers.emulators.alsa_fifo.AlsaFifoRig`) whose capture side
  this emulator feeds and whose playback side it drains, at the card's rate on absolute
  ``time.monotonic()`` deadlines — the emulated card owns the clock, like a USB codec.

One clock thread runs the whole line on the audio's sample clock: every 20 ms it executes what the
script scheduled for that moment (ring edges, caller-ID spill, loop and polarity changes, each sent
on the serial port with the board's millisecond timestamp), renders 20 ms of line audio (on-hook:
caller-ID / alerting signals; off-hook: the far end's audio, a disconnect tone, or the dial tone of a
seized idle line for ``dial_tone_s``), adds noise and mains hum (``hum``), passes
it through µ-law like the network would, writes it to the capture FIFO and records what the driver
transmitted while off-hook. A second thread answers the host's commands.

Scripting (all thread-safe): :meth:`ring`, :meth:`abandon`, :meth:`play`, :meth:`send_dtmf`,
:meth:`send_tone`, :meth:`hang_up`, :meth:`flip_polarity`, :meth:`loop_glitch`, :meth:`garbage`,
:meth:`reset_board`, :meth:`vanish`, :meth:`reappear`, :meth:`pause_audio`; observation: :attr:`off_hook`,
:meth:`wait_off_hook`, :meth:`wait_on_hook`, :meth:`record_far_end`, :attr:`events`.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import os
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from drivers.emulators.alsa_fifo import AlsaFifoRig
from drivers.emulators.line_audio import (
    DTAS,
    RING_CADENCES,
    TONE_PLANS,
    CadencedTone,
    Hum,
    ToneSpec,
    dtmf,
    noise,
)
from drivers.fxo.protocol import (
    PROTOCOL,
    Ack,
    Command,
    CommandDecoder,
    Error,
    Hello,
    Loop,
    Message,
    Polarity,
    Ring,
    Status,
    encode_message,
)
from media import callerid
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, Samples, to_int16
from media.g711 import ulaw_roundtrip
from media.stream_resampler import StreamResampler

log = logging.getLogger(__name__)

TICK_S = FRAME_SAMPLES / SAMPLE_RATE  # 20 ms


class EmulatorError(Exception):
    pass


@dataclass(frozen=True)
class CallerId:
    """What the exchange sends as caller ID (HARDWARE.md §5.5)."""

    number: str | None = None
    name: str | None = None
    when: datetime | None = None
    number_absent: Literal["O", "P"] | None = None
    name_absent: Literal["O", "P"] | None = None
    sdmf: bool = False


# (caller ID, "bell202" | "v23") -> line audio at 8 kHz, seizure to last stop bit
CidRenderer = Callable[[CallerId, str], Samples]


@dataclass(frozen=True)
class FskCallerId:
    """The default :data:`CidRenderer`: ``media.callerid``'s continuous-phase FSK modulator (GR-30 /
    EN 300 659 framing), with the fault knobs of HARDWARE.md §4.3."""

    level_dbm0: float = -13.5
    bad_checksum: bool = False
    truncate: int | None = None  # send only the first N message bytes
    freq_error: float = 0.0  # relative, 0.01 = +1 %
    baud_error: float = 0.0
    mark_bits: int = 180

    def __call__(self, cid: CallerId, standard: str) -> Samples:
        when = cid.when or datetime.now()
        if cid.sdmf:
            msg = callerid.Message.sdmf(cid.number or "", when, absent="" if cid.number else cid.number_absent or "O")
        else:
            msg = callerid.Message.mdmf(number=cid.number, name=cid.name, when=when, number_absent=cid.number_absent,
                                        name_absent=cid.name_absent)
        return callerid.modulate(msg, standard, level_dbm0=self.level_dbm0, bad_checksum=self.bad_checksum,
                                 truncate=self.truncate, freq_error=self.freq_error, baud_error=self.baud_error,
                                 mark_bits=self.mark_bits)


@dataclass(frozen=True)
class BoardQuirks:
    """How this particular board behaves (the driver must cope with all of these)."""

    protocol: str = PROTOCOL
    firmware: str = "1.0.0"
    clock_start_ms: int = 123_456  # the board's uptime when the line clock starts
    loop_delay_ms: int = 40  # off-hook → LOOP 1
    loop_before_ack: bool = False  # LOOP 1 goes out before OK HOOK OFF
    ack_delay_ms: int = 0
    refuse_hook_off: bool = False  # ERR STATE relay fault
    mute: bool = False  # a hung microcontroller: reads commands, answers nothing


@dataclass
class PlayHandle:
    """One queued far-end segment; ``started_at`` / ``ended_at`` are line times (samples)."""

    samples: Samples
    started_at: int | None = None
    ended_at: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    pos: int = 0


@dataclass
class CallLog:
    """One off-hook period: when (line time) and what the driver transmitted (8 kHz)."""

    off_hook_at: int
    on_hook_at: int | None = None
    tx: list[Samples] = field(default_factory=list)
    disconnect_at: int | None = None  # when the far end started to hang up (hang_up)
    disconnect_how: str = ""


@dataclass
class EmulatorStats:
    ticks: int = 0
    late_ticks: int = 0  # ticks that ran more than 20 ms after their deadline
    max_lateness_s: float = 0.0
    capture_opens: int = 0  # a reader appeared on the capture FIFO
    capture_closes: int = 0  # EPIPE: the reader went away
    capture_overflows: int = 0  # the capture FIFO was full: a period was dropped
    capture_samples_written: int = 0
    playback_bytes: int = 0
    commands: int = 0
    bad_commands: int = 0


class FxoEmulator:
    def __init__(self, workdir: str | os.PathLike[str], *, rate: int = SAMPLE_RATE, country: str = "us",
                 device: str = "fxo", cid_renderer: CidRenderer | None = FskCallerId(),
                 quirks: BoardQuirks | None = None, noise_dbm0: float | None = -70.0, ulaw: bool = True,
                 seed: int = 1, hum: Hum | None = None, dial_tone_s: float = 0.0) -> None:
        if rate % 50:
            raise ValueError("rate must be a whole number of samples per 20 ms")
        if country not in TONE_PLANS:
            raise ValueError(f"country {country!r}: one of {sorted(TONE_PLANS)}")
        self.workdir = Path(workdir)
        self.rate = rate
        self.country = country
        self.cid_renderer = cid_renderer
        self.quirks = quirks or BoardQuirks()
        self.noise_dbm0 = noise_dbm0
        self.hum = hum
        self._hum = hum.generator() if hum is not None else None
        self.dial_tone_s = dial_tone_s  # going off-hook with no call ringing: dial tone for this long
        self.ulaw = ulaw
        self.alsa = AlsaFifoRig(self.workdir, device, rate)
        self.serial_path = self.workdir / f"{device}-tty"
        self.stats = EmulatorStats()
        self.events: list[tuple[int, str]] = []  # (line time, what): the board's view of the line
        self.calls: list[CallLog] = []
        self.line_time = 0  # samples at 8 kHz rendered so far
        self._rng = np.random.default_rng(seed)
        self._cond = threading.Condition(threading.RLock())
        self._schedule: list[tuple[int, int, str, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._hook_off = False
        self._ringing = False
        self._loop = False
        self._positive = True
        self._far: deque[PlayHandle] = deque()
        self._onhook: deque[PlayHandle] = deque()
        self._background: CadencedTone | None = None
        self._stop = threading.Event()
        self._clock: threading.Thread | None = None
        self._serial: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._vanish = threading.Event()
        self._commands = CommandDecoder()
        self._cap_fd: int | None = None
        self._play_fd: int | None = None
        self._play_rest = b""
        self._audio_paused = False
        self._up = StreamResampler(SAMPLE_RATE, rate) if rate != SAMPLE_RATE else None
        self._down = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> FxoEmulator:
        self.alsa.create()
        self._play_fd = os.open(self.alsa.playback_fifo, os.O_RDWR | os.O_NONBLOCK)
        with self._cond:
            self._open_pty()
        self._clock = threading.Thread(target=self._run_clock, name="fxo-emu-clock", daemon=True)
        self._clock.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._vanish.set()
        for t in (self._clock, self._serial):
            if t is not None:
                t.join(5.0)
        with self._cond:
            self._close_pty()
            for fd in (self._cap_fd, self._play_fd):
                if fd is not None:
                    os.close(fd)
            self._cap_fd = self._play_fd = None
        with contextlib.suppress(FileNotFoundError):
            self.serial_path.unlink()
        self.alsa.remove()

    def __enter__(self) -> FxoEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting: the exchange
    def ring(self, cid: CallerId | None = None, *, rings: int = 10, cadence: tuple[float, ...] | None = None,
             cid_timing: Literal["after-ring", "before-ring"] = "after-ring", cid_after_ring: int = 1,
             cid_delay_s: float = 0.6, standard: str = "bell202", dtas: bool = True, start_in_s: float = 0.0,
             renderer: CidRenderer | None = None, reversal: bool = True) -> None:
        """Ring ``rings`` cycles (then the caller gives up), with caller ID if ``cid`` is given.

        ``after-ring``: the spill starts ``cid_delay_s`` after ring cycle ``cid_after_ring`` ends.
        ``before-ring`` (BT SIN227 / ETSI): line reversal (if ``reversal``), DT-AS (if ``dtas``), the spill,
        then ringing; without either (DTMF CLIP often comes so) the spill is all the warning there is.
        ``renderer`` overrides the emulator's caller-ID renderer for this call (fault injection).
        Going off-hook trips the ringing (no further edges)."""
        cad = cadence or RING_CADENCES["uk" if self.country == "uk" else "us"]
        if len(cad) % 2:
            raise ValueError("cadence: on/off pairs")
        spill = None
        if cid is not None:
            render = renderer or self.cid_renderer
            if render is None:
                raise EmulatorError("caller ID needs a cid_renderer (e.g. FskCallerId())")
            spill = np.asarray(render(cid, standard), dtype=np.int16)
        with self._cond:
            t = self.line_time + round(start_in_s * SAMPLE_RATE)
            if spill is not None and cid_timing == "before-ring":
                if reversal:
                    self._at(t, "ring", self.flip_polarity)
                    t += round(0.2 * SAMPLE_RATE)
                if dtas:
                    alert = to_int16(CadencedTone(DTAS).render(round(0.1 * SAMPLE_RATE)))
                    self._at(t, "ring", lambda a=alert: self._queue_onhook(a))  # type: ignore[misc]
                    t += round(0.2 * SAMPLE_RATE)
                self._at(t, "ring", lambda: self._queue_onhook(spill))
                t += len(spill) + round(0.5 * SAMPLE_RATE)
            for k in range(1, rings + 1):
                for i in range(0, len(cad), 2):
                    on, off = round(cad[i] * SAMPLE_RATE), round(cad[i + 1] * SAMPLE_RATE)
                    self._at(t, "ring", lambda: self._ring_edge(True))
                    self._at(t + on, "ring", lambda: self._ring_edge(False))
                    if spill is not None and cid_timing == "after-ring" and k == cid_after_ring \
                            and i == len(cad) - 2:
                        self._at(t + on + round(cid_delay_s * SAMPLE_RATE), "ring",
                                 lambda: self._queue_onhook(spill))
                    t += on + off
            self._at(t, "ring", lambda: self._note("caller gave up"))
            self._cond.notify_all()

    def abandon(self) -> None:
        """The caller gives up while it rings: ringing stops now."""
        with self._cond:
            self._cancel("ring")
            self._onhook.clear()
            if self._ringing:
                self._ring_edge(False)
            self._note("caller abandoned")

    def hang_up(self, how: str = "cpc", *, cpc_ms: int = 800, then: str | None = None) -> int:
        """The far end hangs up after answer. Returns the line time where the disconnect signal begins.

        ``how``: ``"cpc"`` (loop current drops for ``cpc_ms``, then returns with tone ``then``),
        ``"polarity"`` (line reversal), ``"busy"`` / ``"reorder"`` / ``"dial"`` (that tone from now on,
        the loop stays), ``"silence"`` (the far end just goes quiet)."""
        with self._cond:
            if not self._hook_off:
                raise EmulatorError("hang_up: the line is not off-hook")
            t = self.line_time
            self._far.clear()
            self._background = None
            if how == "cpc":
                self._set_loop(False)

                def restore() -> None:
                    if self._hook_off:
                        self._set_loop(True)
                        if then is not None:
                            self._background = CadencedTone(self._tone(then))
                self._at(t + cpc_ms * 8, "call", restore)
            elif how == "polarity":
                self.flip_polarity()
            elif how in ("busy", "reorder", "dial", "dial-tone"):
                self._background = CadencedTone(self._tone("dial" if how == "dial-tone" else how))
            elif how != "silence":
                raise ValueError(f"hang_up how={how!r}")
            call = self.calls[-1]
            call.disconnect_at, call.disconnect_how = t, how
            self._note(f"far end hangs up ({how})")
            return t

    def flip_polarity(self) -> None:
        with self._cond:
            self._positive = not self._positive
            self._send(Polarity(self._positive, self._board_ms()))
            self._note(f"POL {'+' if self._positive else '-'}")

    def loop_glitch(self, ms: int) -> None:
        """A short loop-current interruption (shorter than the driver's CPC minimum: not a disconnect)."""
        with self._cond:
            self._set_loop(False)
            self._at(self.line_time + ms * 8, "call", lambda: self._set_loop(True) if self._hook_off else None)

    # ------------------------------------------------------------------ scripting: the far end's audio
    def play(self, samples: npt.ArrayLike) -> PlayHandle:
        """Queue far-end audio (8 kHz int16); it is heard once the line is off-hook, in order."""
        h = PlayHandle(np.asarray(samples, dtype=np.int16).copy())
        with self._cond:
            self._far.append(h)
        return h

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0) -> PlayHandle:
        return self.play(dtmf(digits, on_ms, off_ms, level_dbm0, twist_db, freq_offset_pct))

    def send_tone(self, tone: str | ToneSpec, seconds: float) -> PlayHandle:
        spec = self._tone(tone) if isinstance(tone, str) else tone
        return self.play(to_int16(CadencedTone(spec).render(round(seconds * SAMPLE_RATE))))

    # ------------------------------------------------------------------ scripting: the board itself
    def garbage(self, data: bytes) -> None:
        """Raw bytes on the serial line (line noise, a confused firmware)."""
        with self._cond:
            self._write(data)

    def send(self, msg: Message) -> None:
        with self._cond:
            self._send(msg)

    def reset_board(self) -> None:
        """The microcontroller restarts: relay released, unsolicited HELLO."""
        with self._cond:
            self._board_power_up()

    def vanish(self) -> None:
        """USB unplugged: the tty and its by-id symlink disappear; the line drops (on-hook)."""
        self._vanish.set()
        if self._serial is not None:
            self._serial.join(5.0)
        with self._cond:
            self._close_pty()
            with contextlib.suppress(FileNotFoundError):
                self.serial_path.unlink()
            self._note("board vanished")
            self._release_line()
            self._cond.notify_all()

    def reappear(self) -> None:
        """Plugged back in: a new tty behind the same symlink; the board says HELLO."""
        with self._cond:
            self._vanish.clear()
            self._open_pty()
            self._note("board reappeared")

    def pause_audio(self) -> None:
        """The sound card's clock stops (a USB codec hiccup): no capture samples until resume_audio().

        The FIFO stays open, so the driver's PortAudio thread simply waits for data, as it would
        wait for a stalled device. The line's time goes on; the audio of the pause is lost."""
        with self._cond:
            self._audio_paused = True
            self._note("audio paused")

    def resume_audio(self) -> None:
        with self._cond:
            self._audio_paused = False
            self._note("audio resumed")

    # ------------------------------------------------------------------ observation
    @property
    def off_hook(self) -> bool:
        return self._hook_off

    def wait_off_hook(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._hook_off, timeout)

    def wait_on_hook(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._hook_off, timeout)

    def wait_line_time(self, t: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.line_time >= t, timeout)

    def record_far_end(self, call: int = -1) -> Samples:
        """What the driver transmitted during an off-hook period (8 kHz), the last one by default."""
        with self._cond:
            if not self.calls:
                return np.zeros(0, dtype=np.int16)
            tx = self.calls[call].tx
            return np.concatenate(tx) if tx else np.zeros(0, dtype=np.int16)

    def wait_event(self, what: str, timeout: float, count: int = 1) -> bool:
        """Wait until the board's event log holds ``what`` (e.g. "LOOP 1", "HOOK OFF") ``count`` times."""
        with self._cond:
            return self._cond.wait_for(lambda: sum(w == what for _, w in self.events) >= count, timeout)

    def event_times(self, what: str) -> list[int]:
        with self._cond:
            return [t for t, w in self.events if w == what]

    # ------------------------------------------------------------------ internals: schedule
    def _at(self, t: int, tag: str, fn: Callable[[], Any]) -> None:
        heapq.heappush(self._schedule, (t, next(self._seq), tag, fn))

    def _cancel(self, tag: str) -> None:
        self._schedule = [e for e in self._schedule if e[2] != tag]
        heapq.heapify(self._schedule)

    def _note(self, what: str) -> None:
        self.events.append((self.line_time, what))
        self._cond.notify_all()

    def _tone(self, name: str) -> ToneSpec:
        plan = TONE_PLANS[self.country]
        if name not in plan:
            raise ValueError(f"tone {name!r}: one of {sorted(plan)} for {self.country}")
        return plan[name]

    def _board_ms(self) -> int:
        return (self.quirks.clock_start_ms + self.line_time // 8) % 2**32

    def _ring_edge(self, on: bool) -> None:
        if self._hook_off or self._ringing == on:
            return
        self._ringing = on
        self._send(Ring(on, self._board_ms()))
        self._note(f"RING {int(on)}")

    def _set_loop(self, present: bool) -> None:
        if self._loop == present:
            return
        self._loop = present
        self._send(Loop(present, self._board_ms()))
        self._note(f"LOOP {int(present)}")

    def _queue_onhook(self, samples: Samples) -> None:
        if not self._hook_off:
            self._onhook.append(PlayHandle(samples))

    # ------------------------------------------------------------------ internals: the board's serial side
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self._master, self._slave = master, slave
        tmp = self.serial_path.with_name(self.serial_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.serial_path)
        self._commands = CommandDecoder()
        self._serial = threading.Thread(target=self._run_serial, args=(master,), name="fxo-emu-serial", daemon=True)
        self._serial.start()
        self._board_power_up()

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _board_power_up(self) -> None:
        self._release_line()
        self._send(Hello(self.quirks.protocol, self.quirks.firmware, {"board": "emulator"}))
        self._note("HELLO")

    def _release_line(self) -> None:
        """The relay is open (on-hook) whatever the host thought."""
        if self._hook_off:
            self._hook_off = False
            self._end_call()
        self._loop = False
        self._cancel("call")

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except OSError as e:  # the tty buffer is full (nobody reads) or gone
            log.debug("emulator: serial write dropped: %s", e)

    def _send(self, msg: Message) -> None:
        self._write(encode_message(msg))

    def _run_serial(self, master: int) -> None:
        while not self._vanish.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):  # no process has the tty open (EIO), or closed
                    time.sleep(0.01)
                    continue
                raise
            with self._cond:
                for item in self._commands.feed(data):
                    self._on_command(item)

    def _on_command(self, item: Command | Error) -> None:
        self.stats.commands += 1
        if self.quirks.mute:
            return
        if isinstance(item, Error):
            self.stats.bad_commands += 1
            self._send(item)
            return
        self._note(item.value)
        if item == Command.HELLO:
            self._send(Hello(self.quirks.protocol, self.quirks.firmware, {"board": "emulator"}))
        elif item == Command.STATUS:
            self._send(Status(self._hook_off, self._loop, self._positive, self._ringing, self._board_ms()))
        elif item == Command.HOOK_OFF:
            if self.quirks.refuse_hook_off:
                self._send(Error("STATE", "relay fault"))
                return
            self._go_off_hook()
        else:
            self._go_on_hook()

    def _go_off_hook(self) -> None:
        if not self._hook_off:
            seized = not self._ringing and not any(e[2] == "ring" for e in self._schedule)
            self._cancel("ring")  # ring trip
            self._onhook.clear()
            if self._ringing:
                self._ring_edge(False)
            self._hook_off = True
            self.calls.append(CallLog(off_hook_at=self.line_time))
            self._note("off-hook")
            if seized and self.dial_tone_s > 0:
                dial = CadencedTone(self._tone("dial"))
                self._background = dial

                def dial_off() -> None:
                    if self._background is dial:
                        self._background = None
                        self._note("dial tone off")
                self._at(self.line_time + round(self.dial_tone_s * SAMPLE_RATE), "call", dial_off)
        q = self.quirks
        if q.loop_before_ack:
            self._set_loop(True)
        if q.ack_delay_ms:
            self._at(self.line_time + q.ack_delay_ms * 8, "call", lambda: self._send(Ack(Command.HOOK_OFF)))
        else:
            self._send(Ack(Command.HOOK_OFF))
        self._at(self.line_time + q.loop_delay_ms * 8, "call", lambda: self._set_loop(True) if self._hook_off
                 else None)

    def _go_on_hook(self) -> None:
        was_off = self._hook_off
        self._hook_off = False
        self._send(Ack(Command.HOOK_ON))
        if was_off:
            self._set_loop(False)
            self._end_call()
            self._note("on-hook")
        self._cancel("call")

    def _end_call(self) -> None:
        if self.calls and self.calls[-1].on_hook_at is None:
            self.calls[-1].on_hook_at = self.line_time
        self._far.clear()
        self._background = None
        self._cond.notify_all()

    # ------------------------------------------------------------------ internals: the clock
    def _run_clock(self) -> None:
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            deadline = t0 + (k + 1) * TICK_S
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                if self._stop.is_set():
                    break
            else:
                lateness = -delay
                self.stats.max_lateness_s = max(self.stats.max_lateness_s, lateness)
                if lateness > TICK_S:
                    self.stats.late_ticks += 1
            with self._cond:
                self._tick()
            k += 1

    def _tick(self) -> None:
        self.stats.ticks += 1
        end = self.line_time + FRAME_SAMPLES
        while self._schedule and self._schedule[0][0] < end:
            _, _, _, fn = heapq.heappop(self._schedule)
            fn()
        block = self._render(FRAME_SAMPLES)
        if not self._audio_paused:
            self._write_capture(block)
        self._drain_playback()
        self.line_time = end
        self._cond.notify_all()

    def _render(self, n: int) -> Samples:
        out = np.zeros(n)
        queue_ = self._far if self._hook_off else self._onhook
        pos = 0
        while queue_ and pos < n:
            h = queue_[0]
            if h.started_at is None:
                h.started_at = self.line_time + pos
            take = min(n - pos, len(h.samples) - h.pos)
            out[pos:pos + take] += h.samples[h.pos:h.pos + take]
            h.pos += take
            pos += take
            if h.pos >= len(h.samples):
                h.ended_at = self.line_time + pos
                h.done.set()
                queue_.popleft()
        if self._hook_off and self._background is not None:
            out += self._background.render(n)
        if self._hum is not None:
            out += self._hum.render(n)
        if self.noise_dbm0 is not None:
            out += noise(n, self.noise_dbm0, self._rng)
        pcm = to_int16(out)
        return ulaw_roundtrip(pcm) if self.ulaw else pcm

    def _write_capture(self, block: Samples) -> None:
        card = self._up.process_int16(block) if self._up is not None else block
        if self._cap_fd is None:
            try:
                self._cap_fd = os.open(self.alsa.capture_fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: nobody has the card open: the samples are lost
                    raise
                return
            self.stats.capture_opens += 1
        try:
            os.write(self._cap_fd, card.astype("<i2").tobytes())
            self.stats.capture_samples_written += len(card)
        except BlockingIOError:
            self.stats.capture_overflows += 1
        except BrokenPipeError:
            os.close(self._cap_fd)
            self._cap_fd = None
            self.stats.capture_closes += 1

    def _drain_playback(self) -> None:
        if self._play_fd is None:
            return
        chunks = [self._play_rest]
        while True:
            try:
                data = os.read(self._play_fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        raw = b"".join(chunks)
        self.stats.playback_bytes += len(raw) - len(self._play_rest)
        usable = len(raw) // 2 * 2
        self._play_rest = raw[usable:]
        if not usable:
            return
        card = np.frombuffer(raw[:usable], dtype="<i2")
        line = self._down.process_int16(card) if self._down is not None else card.copy()
        if self._hook_off and self.calls:
            self.calls[-1].tx.append(line)
