"""13.4 benchmark: temporal consistency of jointly sampled clips, pitch of generated tones, costs.

Measures, with the package's own code (``chapter13.temporal``, ``chapter13.audio``):

1. Video: real clips vs clips sampled jointly by the spatio-temporal ``video-digits`` model vs clips
   whose frames were sampled independently by the same network with time mixing off
   (``video-digits-frames``): flicker (mean squared consecutive-frame difference), flicker relative
   to the amount of ink, warping error after the best translation, variation of the ink over a clip,
   and identity agreement (the share of a
   clip's frames that the shipped digit classifier reads as the clip's most frequent digit).
   Target: joint more consistent than per-frame, and closer to the real clips' figures.
   Then issue 14's targets, with the package's classifier **and** the benchmark-only second judge
   (``benchmarks/second_judge.py``: another architecture and seed, no outlier exposure), on every frame
   cut out by ``temporal.digit_crops``: the joint model's identity agreement >= 0.95, >= 85 % of its
   clips one digit in all frames, per-frame confident fraction >= 80 % of the real clips'; the
   per-frame model's confident fraction within 10 points of the joint model's and its agreement
   clearly (>= 0.1) below; prompted clips (``labels=``, classifier-free guidance at
   ``VIDEO_GUIDANCE_SCALE``) read as the requested digit in >= 90 % of their frames.
2. Audio: the share of ``audio-tones`` samples whose dominant frequency lies within 3 % of a training
   pitch. Target (issue 14): >= 97 %, and every one of the four pitches produced.
3. Training time and size of each shipped checkpoint (target: <= 10 minutes, a few MB), as recorded
   in the manifest when it was built.
4. Cost of a full 3×3×3 ``Conv3d`` block against the factorised spatial + temporal block (forward
   and backward), at the shapes of the video model's levels.

    python benchmarks/bench_temporal.py            # shipped checkpoints, 256 clips as issue 14 asks
    python benchmarks/bench_temporal.py --train    # retrain both video models and the audio model first
    python benchmarks/bench_temporal.py --video-only --directory DIR   # video checkpoints from DIR

Timings are taken on whatever else the machine is running; the script prints the load average.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from chapter13 import checkpoints
from chapter13.audio import pitch_metrics, sample_sounds
from chapter13.cost import parameter_count
from chapter13.recipes.video import (
    VIDEO_DATA,
    VIDEO_GUIDANCE_SCALE,
    clip_figures,
    prompted_clips,
    requested_digit_hits,
)
from chapter13.synthetic import PITCHES, SAMPLE_RATE, moving_digits
from chapter13.temporal import TemporalConv, identity_consistency, sample_clips
from chapter13.train import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from second_judge import load_second_judge  # a benchmark-only module next to this one

REAL = "real clips (test digits)"
JOINT = "joint (video-digits)"
FRAMES = "per frame (video-digits-frames)"


def _load(name: str, train: bool, directory: str | None = None) -> nn.Module:
    if train:
        build(name)  # retrain and save, as python -m chapter13.train NAME does
    return checkpoints.load_model(name, directory=directory)


def video_table(
    train: bool, n: int, steps: int, seed: int, directory: str | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, torch.Tensor], dict[str, nn.Module]]:
    """Temporal metrics of real, jointly sampled and per-frame clips; returns (rows, clips, models)."""
    joint = _load("video-digits", train, directory)
    frames = _load("video-digits-frames", train, directory)
    real, _, _ = moving_digits(
        n, VIDEO_DATA["frames"], VIDEO_DATA["size"], VIDEO_DATA["digit_size"], split="test", seed=seed
    )

    rows: dict[str, dict[str, float]] = {REAL: clip_figures(real)}
    clips = {REAL: real}
    for label, model in ((JOINT, joint), (FRAMES, frames)):
        t0 = time.perf_counter()
        clips[label] = sample_clips(model, n, steps=steps, seed=seed)
        seconds = time.perf_counter() - t0
        rows[label] = {**clip_figures(clips[label]), "sample_s_per_clip": seconds / n}
    return rows, clips, {JOINT: joint, FRAMES: frames}


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def identity_targets(clips: dict[str, torch.Tensor], judges: dict[str, nn.Module | None]) -> None:
    """Issue 14's identity and legibility figures of every row, by each judge, with verdicts."""
    for judge_name, judge in judges.items():
        figures = {label: identity_consistency(c, judge) for label, c in clips.items()}
        real, joint, per = figures[REAL], figures[JOINT], figures[FRAMES]
        print(f"\n-- judge: {judge_name}")
        print(f"{'clips':34s}{'agreement':>12s}{'one digit, all frames':>24s}{'frames confident':>18s}")
        for label, f in figures.items():
            print(f"{label:34s}{f['agreement']:12.3f}{f['all_frames']:24.1%}{f['confident_fraction']:18.1%}")
        share = joint["confident_fraction"] / max(real["confident_fraction"], 1e-9)
        gap = abs(per["confident_fraction"] - joint["confident_fraction"])
        checks = [
            (f"joint identity agreement {joint['agreement']:.3f}", ">= 0.95", joint["agreement"] >= 0.95),
            (
                f"joint clips one digit in all frames {joint['all_frames']:.1%}",
                ">= 85 %",
                joint["all_frames"] >= 0.85,
            ),
            (f"joint frames confident, share of real {share:.1%}", ">= 80 %", share >= 0.8),
            (f"per-frame vs joint confident, gap {gap * 100:.1f} points", "<= 10", gap <= 0.10),
            (
                f"per-frame agreement {per['agreement']:.3f} vs joint {joint['agreement']:.3f}",
                "clearly below (>= 0.1)",
                joint["agreement"] - per["agreement"] >= 0.1,
            ),
        ]
        for what, target, ok in checks:
            print(f"  {what:58s} target {target:24s} {_verdict(ok)}")


def prompted_table(
    model: nn.Module, n: int, steps: int, seed: int, judges: dict[str, nn.Module | None]
) -> None:
    """Clips asking for 0..9 in turn at the notebook's guidance scale: share of frames read as asked."""
    if getattr(model, "num_classes", None) is None:
        print("video-digits is unconditional: no prompted clips (issue 14, item 3 not built)")
        return
    t0 = time.perf_counter()
    clips, wanted = prompted_clips(model, n, steps, seed)
    seconds = time.perf_counter() - t0
    for judge_name, judge in judges.items():
        ident = identity_consistency(clips, judge)
        hit = requested_digit_hits(clips, wanted, judge)
        per_digit = [float(hit[wanted == d].mean()) for d in range(10)]
        print(
            f"  {judge_name:10s} frames read as the requested digit {hit.mean():.1%} (target >= 90 %: "
            f"{_verdict(float(hit.mean()) >= 0.9)}); agreement {ident['agreement']:.3f}, one digit in all "
            f"frames {ident['all_frames']:.1%}, confident {ident['confident_fraction']:.1%}"
        )
        print("             per digit: " + " ".join(f"{d}:{v:.0%}" for d, v in enumerate(per_digit)))
    print(f"  guidance scale {VIDEO_GUIDANCE_SCALE}, {seconds / n:.3f} s per clip (two passes per step)")


def print_video(rows: dict[str, dict[str, float]]) -> list[str]:
    keys = ("frame_difference", "relative_flicker", "warp_error", "ink_variation", "identity_agreement")
    higher_is_better = {"identity_agreement"}
    real = rows[REAL]
    print(f"{'clips':34s}" + "".join(f"{k:>20s}" for k in keys) + f"{'s/clip':>9s}")
    for label, m in rows.items():
        extra = f"{m['sample_s_per_clip']:9.3f}" if "sample_s_per_clip" in m else " " * 9
        print(f"{label:34s}" + "".join(f"{m[k]:20.4f}" for k in keys) + extra)
    joint, per = rows[JOINT], rows[FRAMES]
    verdicts = []
    for k in keys:
        closer = abs(joint[k] - real[k]) < abs(per[k] - real[k])
        more = joint[k] > per[k] if k in higher_is_better else joint[k] < per[k]
        sign = (">" if more else "<=") if k in higher_is_better else ("<" if more else ">=")
        verdicts.append(
            f"  {k:18s} joint {sign} per-frame; joint is "
            f"{'closer to' if closer else 'NOT closer to'} real ({abs(joint[k] - real[k]):.4f} vs "
            f"{abs(per[k] - real[k]):.4f})  -> {'MET' if closer and more else 'MISSED'}"
        )
    print("\n".join(verdicts))
    return verdicts


def audio_table(train: bool, n: int, steps: int, seed: int) -> dict[str, object]:
    model = _load("audio-tones", train)
    t0 = time.perf_counter()
    waves = sample_sounds(model, n, steps=steps, seed=seed)
    seconds = time.perf_counter() - t0
    m = pitch_metrics(waves, PITCHES, SAMPLE_RATE)
    print(f"{'pitch (Hz)':>12s}" + "".join(f"{p:>9.1f}" for p in PITCHES) + f"{'other':>9s}")
    other = n - sum(m["counts"])
    print(f"{'samples':>12s}" + "".join(f"{c:>9d}" for c in m["counts"]) + f"{other:>9d}")
    print(
        f"within 3 % of a training pitch: {m['within']:.1%} of {n}  (target >= 97 %, every pitch: "
        f"{'MET' if m['within'] >= 0.97 and min(m['counts']) > 0 else 'MISSED'}); median relative error "
        f"{float(m['relative_error'].median()):.2%}; {seconds / n:.3f} s per sound"
    )
    return m


def checkpoint_table() -> None:
    manifest = checkpoints.read_manifest()
    print(f"{'checkpoint':22s}{'train min':>10s}{'MB':>7s}{'params':>10s}   target <= 10 min")
    for name in ("video-digits", "video-digits-frames", "audio-tones"):
        if name not in manifest:
            print(f"{name:22s} not built")
            continue
        e = manifest[name]
        minutes = e["train_seconds"] / 60
        print(
            f"{name:22s}{minutes:10.1f}{e['bytes'] / 1e6:7.2f}{e['parameters']:10d}   "
            f"{'MET' if minutes <= 10 else 'MISSED'}"
        )


def _time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def block_cost_table(batch: int = 16, frames: int = 8) -> None:
    """Forward + backward of one Conv3d 3x3x3 vs one Conv2d 3x3 + TemporalConv (3 taps), per level."""
    print(
        f"{'C x F x H x W':>16s}{'Conv3d ms':>11s}{'factorised ms':>15s}{'Conv3d params':>15s}{'fact. params':>14s}"
    )
    for c, f, s in ((16, frames, 16), (32, frames // 2, 8), (64, frames // 4, 4)):
        x = torch.randn(batch, c, f, s, s, requires_grad=True)
        conv3d = nn.Conv3d(c, c, 3, padding=1)
        spatial = nn.Conv2d(c, c, 3, padding=1)
        temporal = TemporalConv(c)
        nn.init.normal_(temporal.conv.weight, std=0.01)
        run3d = functools.partial(_conv3d_pass, conv3d, x)
        runfact = functools.partial(_factorised_pass, spatial, temporal, x)
        p3 = parameter_count(conv3d)
        pf = parameter_count(spatial) + parameter_count(temporal)
        print(
            f"{f'{c}x{f}x{s}x{s}':>16s}{_time(run3d) * 1e3:11.1f}{_time(runfact) * 1e3:15.1f}{p3:15d}{pf:14d}"
        )


def _conv3d_pass(conv3d: nn.Module, x: torch.Tensor) -> None:
    conv3d(x).sum().backward()


def _factorised_pass(spatial: nn.Module, temporal: nn.Module, x: torch.Tensor) -> None:
    b, c, f, h, w = x.shape
    y = spatial(x.transpose(1, 2).reshape(b * f, c, h, w)).reshape(b, f, c, h, w).transpose(1, 2)
    temporal(y).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="retrain the three checkpoints first")
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--video-only", action="store_true", help="only section 1 (the video models)")
    parser.add_argument(
        "--directory", help="load the two video checkpoints from this folder (with its manifest)"
    )
    parser.add_argument("--sounds", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared CPU)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"bench_temporal: torch {torch.__version__}, {args.threads} thread(s), load average {load[0]:.1f}")
    print(f"\n== 1. video: temporal consistency ({args.clips} clips, DDIM {args.steps} steps)")
    rows, clips, models = video_table(args.train, args.clips, args.steps, args.seed, args.directory)
    print_video(rows)
    judges = {"package": None, "second": load_second_judge()}
    print("\n== 1b. one legible digit through every frame (issue 14, items 1 and 2)")
    identity_targets(clips, judges)
    print(f"\n== 1c. prompted clips (issue 14, item 3): {args.clips} clips asking for 0..9 in turn")
    prompted_table(models[JOINT], args.clips, args.steps, args.seed, judges)
    if args.video_only:
        return
    print(f"\n== 2. audio: pitch of generated tones ({args.sounds} sounds, DDIM {args.steps} steps)")
    audio_table(args.train, args.sounds, args.steps, args.seed)
    print("\n== 3. training time and size (from the manifest)")
    checkpoint_table()
    print("\n== 4. block cost, forward + backward, batch 16 clips")
    block_cost_table()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
