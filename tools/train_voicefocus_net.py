#!/usr/bin/env python3
"""Train the VoiceFocus "learned" backend's GRU (media/voicefocus/learned.py) and write its weights.

Offline only (not run in CI, not a run-time dependency): needs torch, numpy, scipy, soundfile, plus
espeak-ng and sox, in a throwaway virtualenv, e.g.::

    python3 -m venv /tmp/vftorch && /tmp/vftorch/bin/pip install torch numpy scipy soundfile
    PYTHONPATH=$PWD nice -n 15 /tmp/vftorch/bin/python tools/train_voicefocus_net.py \\
        --work /tmp/vf_work --out media/voicefocus/voicefocus_net.npz
    PYTHONPATH=$PWD python -m gatewayd bench voicefocus --backend learned --jobs 1   # measure it

Stages (each cached in --work; delete the file to redo it):

1. corpus.npz — training mixtures. Clean speech is synthesised here with espeak-ng from this file's
   OWN sentences (none of the harness's), with voices, pitches and speeds drawn at random, so the
   evaluation corpora stay held out: the harness's make_corpus.py gives every seed the same clean
   clips (same sentences, voices, pitches) and only new noise, and its natural corpus is the eight
   alsa-utils recordings, so neither is used for training. The noise comes from the harness's own
   generator (../shared/bench/ns/make_corpus.py: gen_noise, babble pool) at random SNRs of -3..18 dB
   and random overall levels; the harness is imported from --harness, not copied.
2. feats.npz — the builtin suppressor run over every mixture (the learned backend's feature code,
   LearnedVoiceFocus._features), with the clean power spectrum of the same analysis blocks.
3. training — GRU + per-band coefficient maps (see learned.py), with the run-time bound (gain >= --lsa-cut
   x the LSA gain) in place. Loss: mean squared error of power-law compressed magnitudes, |g X|^0.3 vs
   |S|^0.3, over all bins of all blocks (the error where the estimate is below the clean magnitude
   weighted 1 + --keep), plus --stoi x (1 - the mean correlation of 1/3-octave band envelopes of the
   estimate and the clean speech over 400 ms segments, a STOI-like term); Adam, 2 threads; the
   checkpoint with the lowest loss on a held-out tenth of the clips is exported.

The defaults reproduce the shipped weights (160 clips, corpus seed 2718, 20 epochs, --stoi 20,
--lsa-cut 0.25, hidden 64): about 1 min for the corpus, 3 min for the features, 15-25 s per epoch on
this 2-core machine; feats.npz takes ~2.2 GB. Note: the babble noise is the harness's own babble
(its babble sentence pool), as in the evaluation corpora; the talkers and sentences are not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from media.voicefocus.core import FRAME, NBINS, NFFT, VoiceFocus  # noqa: E402
from media.voicefocus.learned import LSA_CUT, NB, NCOEF, NFEAT, LearnedVoiceFocus, band_matrix  # noqa: E402

FS = 8000
# Training sentences written for this script (no overlap with the harness's lists).
SENTENCES = [
    "My order number is four seven two, and it still has not arrived.",
    "Could you transfer me to the billing department, please?",
    "The train to the airport leaves from platform nine every hour.",
    "She painted the fence green before the summer rain came.",
    "I am calling about the broken heater in apartment twelve.",
    "Our office opens at eight thirty and closes at five.",
    "Please repeat the last digits of the account number slowly.",
    "The children built a small boat out of old wooden crates.",
    "We will send a technician between noon and four tomorrow.",
    "The weather turned cold and the lake froze over night.",
    "Yes, that sounds fine, I can be there on Monday.",
    "A quiet voice carried across the empty concert hall.",
    "Turn left at the bakery and walk two blocks north.",
    "He forgot his umbrella on the bus again this morning.",
    "Press one for sales, two for support, or stay on the line.",
    "The garden was full of roses, tulips and tall sunflowers.",
    "I would like to cancel my subscription at the end of the month.",
    "The pilot announced a short delay due to strong winds.",
    "Bring a warm jacket, the mountain path gets chilly at dusk.",
    "Thank you for waiting, your call is important to us.",
    "The doctor asked him to come back in three weeks.",
    "Seven ships sailed out of the harbour before dawn.",
    "Can you hear me now, or should I call you back later?",
    "The recipe needs two eggs, a cup of flour and some milk.",
    "Our network will be down for maintenance on Sunday night.",
    "The old clock in the hallway chimed eleven times.",
    "Write down the address: fifteen Maple Street, second floor.",
    "Nobody expected the match to end in a draw.",
    "The package was left with the neighbour across the road.",
    "Let me check the schedule and get back to you shortly.",
    "Fresh bread smells wonderful early in the morning.",
    "The alarm went off twice, but nobody was in the building.",
    "I think the invoice was sent to the wrong email address.",
    "Cold water flows down from the glacier into the valley.",
    "Hello, this is Maria from the front desk, how can I help?",
    "The museum keeps a collection of ancient silver coins.",
    "Please hold while I connect you to an available agent.",
    "Heavy traffic slowed everyone down on the bridge today.",
    "The library returns desk is on the ground floor.",
    "Good afternoon, I am returning your call from this morning.",
]
VOICES = ["en-us", "en-gb", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-029", "en-gb-scotland",
          "en-gb-x-rp", "de", "nl", "es", "fr"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Tweaky"]


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def load_harness(path: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(path))
    import make_corpus  # type: ignore[import-not-found]

    return make_corpus


def make_training_corpus(harness: Path, nclips: int, seed: int, out: Path) -> None:
    mc = load_harness(harness)
    rng = np.random.default_rng(seed)
    tmp = tempfile.mkdtemp(prefix="vftrain_")
    target_p = (10 ** (mc.TARGET_DBOV / 20.0)) ** 2
    babble_pool = []
    for i, s in enumerate(mc.BABBLE_SENTENCES):  # the harness's babble, built as it builds it
        v, sp = mc.VOICES[(i * 3 + 1) % len(mc.VOICES)]
        x = mc.trim_silence(mc.espeak_8k(s, v, sp + 10, 40 + (i * 7) % 40, tmp, f"bab{i}"))
        babble_pool.append(x / np.sqrt(mc.active_level(x)))
    noisy_l, clean_l, meta = [], [], []
    for c in range(nclips):
        parts = []
        for k in range(1 + int(rng.random() < 0.5)):
            voice = f"{VOICES[rng.integers(len(VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
            text = SENTENCES[rng.integers(len(SENTENCES))]
            x = mc.espeak_8k(text, voice, int(rng.integers(120, 200)), int(rng.integers(10, 95)), tmp, f"c{c}_{k}")
            parts.append(mc.trim_silence(x))
            parts.append(np.zeros(int(rng.uniform(0.2, 0.5) * FS)))
        x = np.concatenate(parts[:-1])[: int(5.5 * FS)]
        lead, tail = int(rng.uniform(0.3, 0.7) * FS), int(rng.uniform(0.2, 0.5) * FS)
        x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
        x = x * np.sqrt(target_p / mc.active_level(x))
        for ni, kind in enumerate(mc.NOISES):
            noise = mc.gen_noise(kind, len(x), np.random.default_rng([seed, 99, ni, c]), babble_pool)
            for _ in range(2):
                snr = rng.uniform(-3.0, 18.0)
                nz = noise * np.sqrt(mc.active_level(x) / (np.mean(noise ** 2) * 10 ** (snr / 10.0)))
                gain = 10 ** (rng.uniform(-10.0, 6.0) / 20.0)
                y = (x + nz) * gain
                s = x * gain
                peak = np.max(np.abs(y))
                if peak > 0.98:
                    y, s = y * 0.98 / peak, s * 0.98 / peak
                yi = np.clip(np.round(y * 32768), -32768, 32767).astype(np.int16)
                noisy_l.append(yi)
                clean_l.append((s * 32768).astype(np.float32))
                meta.append((c, ni, snr))
        if c % 10 == 0:
            say(f"corpus: clip {c}/{nclips}")
    lens = np.array([len(v) for v in noisy_l])
    np.savez(out, noisy=np.concatenate(noisy_l), clean=np.concatenate(clean_l), lens=lens, meta=np.array(meta))


class Recorder(VoiceFocus):
    """The builtin suppressor, recording the learned backend's inputs for every block."""

    _features = LearnedVoiceFocus._features

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        LearnedVoiceFocus._init_features(self)  # type: ignore[arg-type]
        self.rec_f: list[np.ndarray] = []
        self.rec_ev: list[np.ndarray] = []
        self.rec_p: list[np.ndarray] = []

    def _final_gain(self, G, P, lam, xi):  # type: ignore[no-untyped-def]
        self._features(G, P, lam, xi)
        self.rec_f.append(self._feat[:NFEAT].copy())
        self.rec_ev.append(self._ev[:3].astype(np.float32))
        self.rec_p.append(P.astype(np.float32))
        return G


def third_octaves() -> np.ndarray:
    """NBINS x 15 0/1 matrix: the FFT bins of 1/3-octave bands from 150 Hz (as STOI uses)."""
    f = np.arange(NBINS) * FS / NFFT
    ob = np.zeros((NBINS, 15), np.float32)
    for k in range(15):
        c = 150.0 * 2 ** (k / 3)
        ob[(f >= c * 2 ** (-1 / 6)) & (f < c * 2 ** (1 / 6)), k] = 1.0
    return ob


def clean_blocks(s: np.ndarray, nfr: int) -> np.ndarray:
    """Power spectra of the clean signal in the suppressor's analysis blocks (block k ends at frame k)."""
    win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT))
    sp = np.zeros((nfr + 1) * FRAME)
    sp[FRAME:FRAME + len(s)] = s
    idx = np.arange(nfr)[:, None] * FRAME + np.arange(NFFT)[None, :]
    S = np.fft.rfft(sp[idx] * win, axis=1)
    return (np.abs(S) ** 2).astype(np.float32)


def extract(corpus: Path, out: Path) -> None:
    z = np.load(corpus)
    noisy, clean, lens = z["noisy"], z["clean"], z["lens"]
    F, EV, P, S, L = [], [], [], [], []
    off = 0
    t0 = time.time()
    for i, n in enumerate(lens):
        y, s = noisy[off:off + n], clean[off:off + n]
        off += n
        nfr = n // FRAME
        r = Recorder()
        for k in range(nfr):
            r.process(y[k * FRAME:(k + 1) * FRAME])
        F.append(np.stack(r.rec_f))
        EV.append(np.stack(r.rec_ev))
        P.append(np.stack(r.rec_p))
        S.append(clean_blocks(s[:nfr * FRAME], nfr))
        L.append(nfr)
        if i % 200 == 0:
            say(f"features: {i}/{len(lens)} ({time.time() - t0:.0f} s)")
    np.savez(out, feat=np.concatenate(F), ev=np.concatenate(EV), p=np.concatenate(P), s=np.concatenate(S),
             lens=np.array(L), meta=z["meta"])


def train(feats: Path, out: Path, hidden: int, epochs: int, seed: int, keep: float, stoi: float,
          lsa_cut: float) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    z = np.load(feats)
    feat, ev, p, s, lens, meta = z["feat"], z["ev"], z["p"], z["s"], z["lens"], z["meta"]
    mean = feat.mean(axis=0)
    std = feat.std(axis=0) + 1e-3
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    clips = meta[:, 0].astype(int)
    val_clips = set(np.unique(clips)[::10].tolist())
    val = np.array([c in val_clips for c in clips])
    tmax = int(lens.max())

    def batch(ids: np.ndarray) -> tuple:  # type: ignore[type-arg]
        b = len(ids)
        X = np.zeros((b, tmax, NFEAT), np.float32)
        E = np.zeros((b, tmax, 3, NBINS), np.float32)
        A = np.zeros((b, tmax, NBINS), np.float32)
        T = np.zeros((b, tmax, NBINS), np.float32)
        M = np.zeros((b, tmax), np.float32)
        for j, i in enumerate(ids):
            a, n = starts[i], lens[i]
            X[j, :n] = (feat[a:a + n] - mean) / std
            E[j, :n] = ev[a:a + n]
            A[j, :n] = np.sqrt(np.maximum(p[a:a + n] - 1e-3, 0.0)) ** 0.3
            T[j, :n] = s[a:a + n] ** 0.15
            M[j, :n] = 1.0
        return tuple(torch.from_numpy(v) for v in (X, E, A, T, M))

    W = torch.from_numpy(band_matrix().astype(np.float32))  # NB x NBINS
    gru = torch.nn.GRU(NFEAT, hidden, batch_first=True)
    lin = torch.nn.Linear(hidden, NCOEF * NB)
    with torch.no_grad():
        lin.weight.mul_(0.1)
        bias = torch.zeros(NCOEF, NB)
        bias[0] = 1.0  # a: trust log G
        bias[3] = 1.0  # d
        lin.bias.copy_(bias.reshape(-1))
    params = list(gru.parameters()) + list(lin.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    gmin = float(np.log(10 ** (-35 / 20)))

    def loss_of(ids: np.ndarray) -> torch.Tensor:
        X, E, A, T, M = batch(ids)
        h, _ = gru(X)
        coef = lin(h).reshape(X.shape[0], X.shape[1], NCOEF, NB) @ W  # B T NCOEF NBINS
        zz = coef[:, :, 0] * E[:, :, 0] + coef[:, :, 1] * E[:, :, 1] + coef[:, :, 2] * E[:, :, 2] + coef[:, :, 3]
        logg = -torch.nn.functional.softplus(-zz)
        if lsa_cut > 0:  # as at run time: never more than lsa_cut below the LSA gain
            logg = torch.maximum(logg, E[:, :, 0] + float(np.log(lsa_cut)))
        logg = torch.clamp(logg, min=gmin)
        est = torch.exp(0.3 * logg) * A
        d = est - T
        err = (d ** 2 + keep * torch.relu(-d) ** 2).mean(dim=2) * M
        loss = err.sum() / M.sum()
        if stoi > 0:
            loss = loss + stoi * envelope_loss(torch.exp(logg) * A ** (1 / 0.3), T ** (1 / 0.3), M)
        return loss

    ob = torch.from_numpy(third_octaves())  # NBINS x 15

    def envelope_loss(est: torch.Tensor, ref: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """1 - mean correlation of 1/3-octave band envelopes over 400 ms segments (STOI-like)."""
        e = torch.sqrt((est ** 2) @ ob + 1e-6)  # B T 15
        r = torch.sqrt((ref ** 2) @ ob + 1e-6)
        seg, hop = 20, 4
        e = e.unfold(1, seg, hop)  # B S 15 seg
        r = r.unfold(1, seg, hop)
        ms = M.unfold(1, seg, hop).min(dim=2).values  # B S: segment fully inside the clip
        energy = (r ** 2).sum(dim=(2, 3))
        act = (energy > 1e-3 * energy.max(dim=1, keepdim=True).values).float() * ms
        e = e - e.mean(dim=3, keepdim=True)
        r = r - r.mean(dim=3, keepdim=True)
        corr = (e * r).sum(dim=3) / (e.norm(dim=3) * r.norm(dim=3) + 1e-3)  # B S 15
        return 1.0 - (corr.mean(dim=2) * act).sum() / (act.sum() + 1e-6)

    tr_ids = np.where(~val)[0]
    va_ids = np.where(val)[0]
    rng = np.random.default_rng(seed)
    best = float("inf")
    bs = 32
    for ep in range(epochs):
        if ep == int(epochs * 0.6):
            for g in opt.param_groups:
                g["lr"] = 7e-4
        t0 = time.time()
        perm = rng.permutation(tr_ids)
        tot = 0.0
        for k in range(0, len(perm), bs):
            opt.zero_grad()
            lo = loss_of(perm[k:k + bs])
            lo.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            tot += float(lo.detach()) * len(perm[k:k + bs])
        with torch.no_grad():
            vl = sum(float(loss_of(va_ids[k:k + 64])) * len(va_ids[k:k + 64]) for k in range(0, len(va_ids), 64))
            vl /= len(va_ids)
        say(f"epoch {ep}: train {tot / len(tr_ids):.5f} val {vl:.5f} ({time.time() - t0:.0f} s)")
        if vl < best:
            best = vl
            np.savez(out,
                     w_ih=gru.weight_ih_l0.detach().numpy().astype(np.float64),
                     b_ih=gru.bias_ih_l0.detach().numpy().astype(np.float64),
                     w_hh=gru.weight_hh_l0.detach().numpy().astype(np.float64),
                     b_hh=gru.bias_hh_l0.detach().numpy().astype(np.float64),
                     w_out=lin.weight.detach().numpy().astype(np.float64),
                     b_out=lin.bias.detach().numpy().astype(np.float64),
                     feat_mean=mean.astype(np.float64), feat_std=std.astype(np.float64))
    say(f"best val {best:.5f} -> {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", type=Path, default=REPO.parent / "shared" / "bench" / "ns")
    ap.add_argument("--work", type=Path, default=Path("/tmp/vf_work"))
    ap.add_argument("--out", type=Path, default=REPO / "media" / "voicefocus" / "voicefocus_net.npz")
    ap.add_argument("--nclips", type=int, default=160)
    ap.add_argument("--corpus-seed", type=int, default=2718)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=31337, help="training seed (weights init, batch order)")
    ap.add_argument("--stoi", type=float, default=20.0,
                    help="weight of the STOI-like envelope-correlation loss (1/3-octave bands, 400 ms segments)")
    ap.add_argument("--lsa-cut", type=float, default=LSA_CUT,
                    help="train with the run-time bound gain >= this x the LSA gain (0: without)")
    ap.add_argument("--keep", type=float, default=0.0,
                    help="extra weight of the error where speech is cut (estimate below the clean magnitude)")
    ap.add_argument("--stage", choices=("corpus", "feats", "train", "all"), default="all")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    corpus, feats = args.work / "corpus.npz", args.work / "feats.npz"
    if args.stage in ("corpus", "feats", "all") and not corpus.exists():
        make_training_corpus(args.harness, args.nclips, args.corpus_seed, corpus)
    if args.stage in ("feats", "all") and not feats.exists():
        extract(corpus, feats)
    if args.stage in ("train", "all"):
        train(feats, args.out, args.hidden, args.epochs, args.seed, args.keep, args.stoi, args.lsa_cut)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
