"""Talk-off corpus for the DTMF detector: synthetic speech and music-like signals through G.711.

Nothing here is committed audio. The corpus is generated — speech by espeak-ng (several languages,
voices, speeds and pitches), music-like signals by numpy (melodies and chords of harmonic-rich
timbres with vibrato, sweeps) — then levelled, passed through µ-law or A-law, and cached as 8 kHz
WAV files under ``$GATEWAYD_CACHE`` (default ``$XDG_CACHE_HOME/gatewayd`` or ``~/.cache/gatewayd``)
in a directory named after a hash of this file and the espeak-ng version, so editing the script
regenerates it and nothing stale is reused.

By hand::

    PYTHONPATH=. python -m tests.corpus.talkoff            # build (or reuse) and scan: false digits per segment
    PYTHONPATH=. python -m tests.corpus.talkoff --out DIR  # also copy the WAV files to DIR to listen to them
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media import g711
from media.frame import SAMPLE_RATE, Samples, to_int16
from media.levels import dbm0_to_rms, mean_abs, rms
from media.wav import read_wav, write_wav

log = logging.getLogger(__name__)

FS = SAMPLE_RATE

# ---------------------------------------------------------------------------------------- speech
# (espeak-ng voice, text). Each text is spoken with several voice variants, speeds and pitches.
TEXTS: dict[str, str] = {
    "en-us": (
        "Thank you for calling. Please listen carefully, because our options have changed. If you know "
        "your party's extension, you may dial it at any time. For billing questions, stay on the line and "
        "a representative will be with you shortly. Your call is important to us. The weather tomorrow "
        "will be cloudy in the morning, with a chance of rain after four o'clock, and winds from the "
        "north west at twelve miles per hour. My number is five five five, two one nine, eight "
        "three four seven. Hello? Hello, are you still there? Yes, I can hear you now."),
    "en-gb": (
        "Good afternoon, it's Margaret from the surgery calling about your appointment on Thursday. We "
        "need to move it to half past nine, if that suits you. Could you ring us back on oh one two "
        "three, four five six, seven eight nine? Otherwise we'll try again tomorrow morning. Oh, and "
        "please bring your prescription and the letter from the hospital. Lovely, thanks ever so much, "
        "bye now. Well, I never! Really? Oh, that's wonderful news, isn't it."),
    "de": (
        "Guten Tag, hier ist der automatische Anrufbeantworter der Familie Schneider. Leider sind wir "
        "im Moment nicht erreichbar. Bitte hinterlassen Sie nach dem Signalton Ihren Namen, Ihre "
        "Telefonnummer und eine kurze Nachricht. Wir rufen so schnell wie möglich zurück. Am Wochenende "
        "sind wir in den Bergen, das Wetter soll herrlich werden. Vielen Dank und auf Wiederhören."),
    "fr-fr": (
        "Bonjour, vous êtes bien au cabinet du docteur Martin. Le secrétariat est ouvert du lundi au "
        "vendredi, de huit heures trente à dix-neuf heures. En cas d'urgence, composez le quinze. Pour "
        "prendre rendez-vous, laissez votre nom et votre numéro de téléphone, nous vous rappellerons "
        "dans la journée. Il fait beau aujourd'hui, n'est-ce pas? Oui, vraiment magnifique."),
    "es": (
        "Hola, buenas tardes. Le llamo de la farmacia para decirle que su pedido ya ha llegado. Puede "
        "pasar a recogerlo cuando quiera, estamos abiertos hasta las nueve de la noche. Si tiene alguna "
        "pregunta, llámenos al nueve uno dos, tres cuatro cinco, seis siete ocho. Muchas gracias y que "
        "tenga un buen día. ¿Cómo? ¿Me oye? Ahora sí, perfectamente."),
    "it": (
        "Pronto, sono Giulia. Ti chiamo per la cena di sabato sera. Abbiamo prenotato al ristorante "
        "vicino al porto alle otto e mezza. Porta anche tuo fratello, se vuole venire. Dopo pensavamo "
        "di fare una passeggiata lungo il mare, il tempo dovrebbe essere bello. Richiamami quando senti "
        "questo messaggio, va bene? Ciao, a presto!"),
    "nl": (
        "Goedemorgen, u spreekt met de klantenservice van het energiebedrijf. Wij bellen u over de "
        "meterstanden van vorige maand. Zou u die via onze website willen doorgeven? Als u vragen hebt, "
        "kunt u ons bereiken op werkdagen tussen negen en vijf uur. Fijne dag nog, en tot ziens."),
    "pt-br": (
        "Olá, aqui é o Paulo da oficina. O seu carro já está pronto, trocamos o óleo, os freios e as "
        "duas lâmpadas da frente. O valor ficou em trezentos e quarenta reais. Pode buscar amanhã de "
        "manhã, a partir das oito horas. Qualquer dúvida, é só ligar. Um abraço e até logo."),
    "pl": (
        "Dzień dobry, dzwonię w sprawie ogłoszenia o mieszkaniu do wynajęcia. Czy jest jeszcze "
        "aktualne? Chciałbym je obejrzeć w przyszłym tygodniu, najlepiej we wtorek po południu. Proszę "
        "o telefon pod numer sześćset dwanaście, czterysta trzydzieści, dwieście dziewięćdziesiąt. "
        "Dziękuję bardzo i do usłyszenia."),
    "ru": (
        "Здравствуйте, это Анна из библиотеки. Книги, которые вы заказывали, уже пришли. Вы можете "
        "забрать их в любой день, кроме воскресенья, с десяти утра до семи вечера. Не забудьте, "
        "пожалуйста, читательский билет. Спасибо, всего доброго, до свидания."),
    "cmn": (
        "你好，这里是图书馆。你预订的书已经到了，请在本周五之前来取。我们每天早上九点开门，晚上八点关门。"
        "如果有问题，请给我们打电话。谢谢，再见。今天天气很好，我们一起去公园散步吧。"),
    "hi": (
        "नमस्ते, मैं बैंक से बोल रहा हूँ। आपका नया कार्ड तैयार है। कृपया अगले सप्ताह शाखा में आकर इसे ले "
        "जाइए। अगर आपको कोई सवाल है, तो हमें कभी भी फ़ोन कीजिए। धन्यवाद, आपका दिन शुभ हो।"),
}

# Sustained vowels, hums and sung-like syllables: the kind of steady voiced sound that fools detectors.
SUSTAINED = ("Aaaaaaah. Ooooooh. Eeeeeeee. Mmmmmmmm. Hmmmmm? Noooooo. Yeeeeees. Wooooow. "
             "La la la la laaaa. Do re mi fa so la ti do. Ummmmm, well, uhhhhh, let me see. Ahhhh, okaaaay.")

# (voice, variant, words per minute, pitch 0-99, target active level dBm0)
SPEECH: list[tuple[str, str, int, int, float]] = [
    ("en-us", "m3", 160, 40, -15.0), ("en-us", "f3", 190, 75, -12.0), ("en-us", "klatt2", 130, 55, -20.0),
    ("en-gb", "f2", 170, 65, -15.0), ("en-gb", "m1", 220, 30, -9.0),
    ("de", "m2", 150, 45, -18.0), ("de", "f4", 175, 80, -12.0),
    ("fr-fr", "f1", 165, 70, -15.0), ("fr-fr", "m4", 200, 35, -24.0),
    ("es", "m5", 180, 50, -15.0), ("es", "f5", 150, 90, -12.0),
    ("it", "f2", 170, 60, -15.0), ("it", "m6", 140, 20, -18.0),
    ("nl", "m7", 160, 45, -15.0), ("pt-br", "f3", 185, 72, -15.0),
    ("pl", "m1", 155, 38, -12.0), ("ru", "f4", 165, 66, -15.0),
    ("cmn", "f1", 150, 70, -15.0), ("cmn", "m2", 170, 45, -12.0), ("hi", "m3", 160, 50, -15.0),
]
SUSTAINED_VOICES: list[tuple[str, str, int, int, float]] = [
    ("en-us", "f3", 90, 80, -12.0), ("en-us", "m3", 90, 30, -12.0), ("en-us", "f5", 110, 99, -9.0),
    ("it", "m2", 100, 60, -15.0), ("en-gb", "croak", 100, 50, -15.0), ("en-us", "whisper", 120, 50, -15.0),
]


def _espeak(voice: str, variant: str, wpm: int, pitch: int, text: str, out: Path) -> Samples:
    subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(wpm), "-p", str(pitch), "-w", str(out), text],
                   check=True, capture_output=True, timeout=120)
    return read_wav(out)


def _set_active_level(x: npt.NDArray[np.float64], dbm0: float) -> npt.NDArray[np.float64]:
    """Scale so that the frames carrying sound (not the pauses) are at ``dbm0`` on average."""
    n = x.shape[0] // 160 * 160
    fr = x[:n].reshape(-1, 160)
    p = (fr * fr).mean(axis=1)
    active = p[p > 1e-3 * p.max()] if p.size else p
    level = float(np.sqrt(active.mean())) if active.size else 0.0
    return x * (dbm0_to_rms(dbm0) / level) if level > 0 else x


# ---------------------------------------------------------------------------------------- music
# Relative amplitudes of harmonics 1, 2, 3, ...: spectra of the usual instrument families.
TIMBRES: dict[str, tuple[float, ...]] = {
    "strings": tuple(1 / n for n in range(1, 11)),
    "clarinet": (1.0, 0.1, 0.33, 0.05, 0.2, 0.03, 0.14, 0.02, 0.11),
    "flute": (1.0, 0.5, 0.25, 0.12, 0.06),
    "organ": (1.0, 0.7, 0.5, 0.3, 0.2, 0.1),
    "brass": (0.6, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1),
    "piano": tuple(n ** -1.5 for n in range(1, 9)),
    "voice": (1.0, 0.8, 0.5, 0.6, 0.3, 0.2, 0.15, 0.1),
}


def _note(rng: np.random.Generator, midi: float, n: int, timbre: str, vibrato: bool) -> npt.NDArray[np.float64]:
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(n) / FS
    dev = 0.006 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6.3)) if vibrato else np.zeros(n)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + dev)) / FS
    out = np.zeros(n)
    for k, a in enumerate(TIMBRES[timbre], start=1):
        if k * f0 < FS / 2 - 100:
            out += a * np.sin(k * phase + rng.uniform(0, 6.3))
    a_n, r_n = min(n // 4, int(0.02 * FS)), min(n // 3, int(0.08 * FS))
    env = np.ones(n)
    env[:a_n] = np.linspace(0, 1, a_n)
    if timbre == "piano":
        env *= np.exp(-t * 3.0)
    env[n - r_n:] *= np.linspace(1, 0, r_n)
    return out * env


def _melody(rng: np.random.Generator, seconds: float, timbre: str, vibrato: bool) -> npt.NDArray[np.float64]:
    parts = []
    midi = float(rng.integers(62, 82))
    total = 0
    while total < seconds * FS:
        midi = float(np.clip(midi + rng.choice([-4, -3, -2, -1, 1, 2, 3, 5, 7]), 55, 96))
        n = int(rng.uniform(0.1, 0.6) * FS)
        parts.append(_note(rng, midi, n, timbre, vibrato))
        total += n
    return np.concatenate(parts)


def _chords(rng: np.random.Generator, seconds: float, timbre: str) -> npt.NDArray[np.float64]:
    parts = []
    total = 0
    shapes = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 5, 9), (0, 4, 7, 14), (0, 7, 16)]
    while total < seconds * FS:
        root = float(rng.integers(55, 80))
        shape = shapes[int(rng.integers(len(shapes)))]
        n = int(rng.uniform(0.4, 1.6) * FS)
        parts.append(sum(_note(rng, root + iv, n, timbre, False) for iv in shape))
        total += n
    return np.concatenate(parts)


def _sweeps(seconds: float, harmonic: bool) -> npt.NDArray[np.float64]:
    """Log and linear sweeps 200-3400 Hz, up and down, at several rates."""
    parts = []
    for dur in (0.5, 1.0, 2.0, 4.0):
        for up, logsweep in ((True, True), (False, True), (True, False)):
            n = int(dur * FS)
            u = np.linspace(0, 1, n)
            f = 200 * (3400 / 200) ** u if logsweep else 200 + 3200 * u
            f = f if up else f[::-1]
            phase = 2 * np.pi * np.cumsum(f) / FS
            x = np.zeros(n)
            for k, a in enumerate(TIMBRES["strings"] if harmonic else (1.0,), start=1):
                x += np.where(k * f < FS / 2 - 100, a * np.sin(k * phase), 0.0)
            parts.append(x)
    out = np.concatenate(parts)
    return out[:int(seconds * FS)] if out.shape[0] > seconds * FS else out


def _music(seed: int) -> list[tuple[str, npt.NDArray[np.float64], float]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[str, npt.NDArray[np.float64], float]] = []
    for i, (timbre, vib) in enumerate([("strings", True), ("clarinet", False), ("flute", True), ("brass", False),
                                       ("voice", True), ("piano", False), ("organ", False)]):
        out.append((f"melody-{timbre}", _melody(rng, 18.0, timbre, vib), (-12.0, -18.0, -9.0)[i % 3]))
    for i, timbre in enumerate(("organ", "strings", "piano", "clarinet", "brass")):
        out.append((f"chords-{timbre}", _chords(rng, 18.0, timbre), (-12.0, -15.0)[i % 2]))
    out.append(("sweeps-sine", _sweeps(30.0, False), -12.0))
    out.append(("sweeps-harmonic", _sweeps(30.0, True), -12.0))
    return out


# ---------------------------------------------------------------------------------------- build / cache
@dataclass(frozen=True)
class Segment:
    name: str
    kind: str  # "speech" or "music"
    law: str  # "ulaw" or "alaw"
    samples: Samples

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / FS


def espeak_version() -> str:
    try:
        return subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "espeak-ng missing"


def corpus_key() -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(espeak_version().encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("GATEWAYD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gatewayd")
    return Path(base) / "talkoff"


def _g711(x: npt.NDArray[np.float64], law: str) -> Samples:
    s = to_int16(x)
    return g711.ulaw_roundtrip(s) if law == "ulaw" else g711.alaw_roundtrip(s)


def build(dest: Path) -> list[Segment]:
    """Generate the whole corpus into ``dest`` (WAV files and index.json)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (tools/dev installs it)")
    dest.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, int, int, float, str, str]] = []
    for voice, variant, wpm, pitch, lvl in SPEECH:
        jobs.append((voice, variant, wpm, pitch, lvl, TEXTS[voice], f"speech-{voice}-{variant}-{wpm}-{pitch}"))
    for voice, variant, wpm, pitch, lvl in SUSTAINED_VOICES:
        jobs.append((voice, variant, wpm, pitch, lvl, SUSTAINED, f"sustained-{voice}-{variant}-{pitch}"))
    raw: list[tuple[str, str, npt.NDArray[np.float64], float]] = []
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futs = [pool.submit(_espeak, v, var, w, p, text, Path(tmp) / f"{name}.wav")
                for v, var, w, p, _l, text, name in jobs]
        for (_v, _var, _w, _p, lvl, _t, name), fut in zip(jobs, futs, strict=True):
            raw.append((name, "speech", fut.result().astype(np.float64), lvl))
    for name, x, lvl in _music(seed=20240611):
        raw.append((name, "music", x, lvl))
    segments: list[Segment] = []
    index = []
    for i, (name, kind, x, lvl) in enumerate(raw):
        law = "ulaw" if i % 2 == 0 else "alaw"
        s = _g711(_set_active_level(x, lvl), law)
        write_wav(dest / f"{name}.wav", s)
        segments.append(Segment(name, kind, law, s))
        index.append({"name": name, "kind": kind, "law": law, "samples": int(s.shape[0]),
                      "level_dbov": round(20 * np.log10(max(rms(s), 1e-9) / 32768), 1),
                      "mean_abs": round(mean_abs(s), 1)})
    (dest / "index.json").write_text(json.dumps(index, indent=1))
    return segments


def load(root: Path | None = None) -> list[Segment]:
    """The corpus, from the cache when this script and espeak-ng are unchanged, else built now."""
    d = (root or cache_root()) / corpus_key()
    idx = d / "index.json"
    if not idx.exists():
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=d.parent))
        try:
            build(tmp)
            try:
                os.replace(tmp, d)
            except OSError:  # another process finished first
                if not idx.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    entries = json.loads(idx.read_text())
    return [Segment(e["name"], e["kind"], e["law"], read_wav(d / f"{e['name']}.wav")) for e in entries]


def scan(segments: Sequence[Segment]) -> dict[str, list[tuple[str, float, float]]]:
    """False digits per segment: {name: [(digit, start s, end s), ...]}, fed in 160-sample frames."""
    from media.dtmf import DtmfDetector

    out: dict[str, list[tuple[str, float, float]]] = {}
    for seg in segments:
        det = DtmfDetector()
        evs = []
        x = seg.samples
        for i in range(0, x.shape[0], 160):
            evs += det.feed(x[i:i + 160])
        evs += det.flush()
        out[seg.name] = [(e.digit, e.start_seconds, e.end_seconds) for e in evs]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="copy the corpus WAV files here")
    ap.add_argument("--rebuild", action="store_true", help="ignore the cache")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.rebuild:
        shutil.rmtree(cache_root() / corpus_key(), ignore_errors=True)
    segs = load()
    t1 = time.perf_counter()
    hits = scan(segs)
    t2 = time.perf_counter()
    total = sum(s.seconds for s in segs)
    w = sys.stdout.write
    for s in segs:
        w(f"{s.name:40s} {s.kind:6s} {s.law:4s} {s.seconds:6.1f} s  {len(hits[s.name])} false"
          + "".join(f"  {d}@{a:.2f}-{b:.2f}" for d, a, b in hits[s.name]) + "\n")
    nfalse = sum(len(v) for v in hits.values())
    speech = sum(s.seconds for s in segs if s.kind == "speech")
    w(f"total {total / 60:.1f} min ({speech / 60:.1f} speech, {(total - speech) / 60:.1f} music), "
      f"{nfalse} false digits; load {t1 - t0:.1f} s, scan {t2 - t1:.1f} s; cache {cache_root() / corpus_key()}\n")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for s in segs:
            write_wav(args.out / f"{s.name}.wav", s.samples)
    return 1 if nfalse else 0


if __name__ == "__main__":
    raise SystemExit(main())
