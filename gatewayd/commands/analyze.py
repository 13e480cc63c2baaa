"""``gatewayd analyze FILE.wav``: levels, silence spans and DTMF digits of a recording."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from media.analysis import AnalysisOptions, analyse_file
from media.wav import WavError, read_wav

log = logging.getLogger(__name__)

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73


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


def _size(text: str) -> tuple[int, int]:
    from gatewayd.analysis_plot import MAX_SIZE_PX, MIN_SIZE_PX

    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT in pixels: {text!r}")
    size = (int(w), int(h))
    if not all(lo <= v <= hi for v, lo, hi in zip(size, MIN_SIZE_PX, MAX_SIZE_PX, strict=True)):
        raise argparse.ArgumentTypeError(f"{text}: from {MIN_SIZE_PX[0]}x{MIN_SIZE_PX[1]} to "
                                         f"{MAX_SIZE_PX[0]}x{MAX_SIZE_PX[1]} pixels")
    return size


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
    p.add_argument("--plot", metavar="OUT.png", default=None,
                   help="also draw waveform, frame levels with the threshold, silence, DTMF, tones and caller ID "
                        "into a PNG file (needs the plot extra: matplotlib)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="with --plot: image size in pixels (default 1200x600)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.size is not None and not args.plot:
        sys.stderr.write("gatewayd analyze: --size goes with --plot OUT.png\n")
        return EX_USAGE
    if args.plot:
        from gatewayd.analysis_plot import PlotUnavailable, require_matplotlib

        try:
            require_matplotlib()  # before the analysis: nothing is half done
        except PlotUnavailable as e:
            sys.stderr.write(f"gatewayd analyze: {e}\n")
            return EX_UNAVAILABLE
    try:
        opts = AnalysisOptions(threshold=args.threshold, min_silence=args.min_silence, country=args.country,
                               cid_standard=args.cid_standard)
        report = analyse_file(args.file, opts)
    except WavError as e:
        sys.stderr.write(f"gatewayd analyze: {e}\n")
        return EX_NOINPUT if "cannot read" in str(e) else EX_DATAERR
    plotted, rc = "", 0
    if args.plot:
        from gatewayd.analysis_plot import DEFAULT_SIZE_PX, save_plot

        try:
            save_plot(read_wav(args.file), report.to_json(), args.plot, title=f"{args.file} ({report.duration:.2f} s)",
                      size_px=args.size or DEFAULT_SIZE_PX)
            plotted = str(args.plot)
        except OSError as e:  # the report is still printed
            sys.stderr.write(f"gatewayd analyze: cannot write the plot {args.plot}: {e.strerror or e}\n")
            rc = EX_CANTCREAT
    if args.json:
        out = report.to_json()
        if plotted:
            out["plot"] = plotted
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(report.to_text() + (f"plot: {plotted}\n" if plotted else ""))
    return rc
