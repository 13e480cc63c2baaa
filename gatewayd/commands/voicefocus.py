"""``gatewayd voicefocus IN.wav OUT.wav``: run VoiceFocus noise suppression over a file, offline.

The file goes through exactly the streaming code a live leg uses (20 ms frames, per-leg state); the
20 ms algorithmic delay is removed so OUT lines up with IN. IN may be any PCM WAV the media layer
reads (any rate, any channel count); OUT is 8 kHz 16-bit mono, written atomically, so a failure
never leaves a partial file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from gatewayd.config.model import DEFAULT_VOICEFOCUS_BACKEND, VOICEFOCUS_BACKENDS
from media.frame import SAMPLE_RATE
from media.wav import WavError, read_wav, write_wav

log = logging.getLogger(__name__)

EX_DATAERR = 65
EX_CANTCREAT = 73


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "voicefocus", help="suppress background noise in a WAV file (8 kHz 16-bit mono out)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN.wav", help="any PCM WAV file")
    p.add_argument("output", metavar="OUT.wav", help="written as 8 kHz 16-bit mono")
    p.add_argument("--backend", choices=VOICEFOCUS_BACKENDS, default=DEFAULT_VOICEFOCUS_BACKEND,
                   help="suppressor (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        x = read_wav(args.input)
    except WavError as e:
        sys.stderr.write(f"gatewayd voicefocus: {args.input}: {e}\n")
        return EX_DATAERR
    from media.voicefocus import enhance_with  # scipy: loaded by this command only, not by every gatewayd process

    t0 = time.process_time()
    y = enhance_with(x, args.backend)
    cpu = time.process_time() - t0
    try:
        write_wav(args.output, y)
    except OSError as e:
        sys.stderr.write(f"gatewayd voicefocus: cannot write {args.output}: {e.strerror or e}\n")
        return EX_CANTCREAT
    dur = len(x) / SAMPLE_RATE
    sys.stdout.write(f"{args.output}: {dur:.2f} s of 8 kHz audio, processed at "
                     f"{dur / cpu if cpu > 0 else float('inf'):.0f}x real time\n")
    return 0
