"""``gatewayd analyze FILE.wav``: levels, silence spans and DTMF digits of a recording."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from media.analysis import AnalysisOptions, analyse_file
from media.wav import WavError

log = logging.getLogger(__name__)

EX_DATAERR = 65
EX_NOINPUT = 66


def _threshold(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= 32768:
        raise argparse.ArgumentTypeError("the threshold is a mean |sample| of a 20 ms frame: 0 < T <= 32768")
    return v


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return v


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "analyze", help="levels, silence, DTMF, call-progress tones and caller ID of a WAV file",
        description="Analyse a WAV file (any PCM, float or G.711 WAV; analysed as 8 kHz mono): level per "
                    "second in dBov, silence spans at a SilenceThreshold, DTMF digits with start and end, "
                    "call-progress tones and caller-ID messages.")
    p.add_argument("file", help="WAV file")
    p.add_argument("--json", action="store_true", help="machine-readable output (keys in README, 'gatewayd analyze')")
    p.add_argument("--threshold", type=_threshold, default=AnalysisOptions.threshold,
                   help="SilenceThreshold: a 20 ms frame is silent when its mean |sample| is below T (default 200)")
    p.add_argument("--min-silence", type=_seconds, default=AnalysisOptions.min_silence, metavar="SECONDS",
                   help="shortest silence span to list (default 0.5)")
    p.add_argument("--country", default="us", help="call-progress tone plan (us, uk, de, fr, ...; default us)")
    p.add_argument("--cid-standard", choices=("bell202", "v23"), default=None,
                   help="caller-ID FSK standard (default: try both)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        opts = AnalysisOptions(threshold=args.threshold, min_silence=args.min_silence, country=args.country,
                               cid_standard=args.cid_standard)
        report = analyse_file(args.file, opts)
    except WavError as e:
        sys.stderr.write(f"gatewayd analyze: {e}\n")
        return EX_NOINPUT if "cannot read" in str(e) else EX_DATAERR
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(report.to_text())
    return 0
