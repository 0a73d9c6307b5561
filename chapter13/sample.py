"""Sample a shipped diffusion model from the command line.

    python -m chapter13.sample codelab-mnist --n 64 --steps 50 --seed 0 --out digits.png
    python -m chapter13.sample codelab-mnist --n 256 --out samples.pt       # float (N, C, H, W) in [-1, 1]

Sampling is DDIM (Song et al. 2021, eq. 12; ``--eta 0`` deterministic, ``--eta 1`` DDPM-like).
``.pt`` files hold the samples as a float32 tensor (N, C, H, W) in [-1, 1] (read them with
``torch.load(path, weights_only=True)``); ``.png`` files hold an image grid.

Conditional checkpoints take ``--label D`` (a digit 0-9), ``--prompt TEXT`` and ``--guidance S``
(the classifier-free guidance scale); an unconditional checkpoint refuses them with a clear message.

Adding a checkpoint: give its ``Recipe`` in ``chapter13.recipes`` a ``sampler`` that returns a
``SamplerSpec`` (how to draw ``n`` samples and which of ``label``/``prompt``/``guidance`` it accepts).

Errors follow ``chapter13.cli``'s convention: a bad request (an unknown name, a device this machine
lacks, ``--n 1 --metrics``, an unwritable ``--out``, a corrupt checkpoint manifest) prints one line
``error: ...`` on stderr and exits 2, before any sampling where it can be known in advance.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chapter13 import checkpoints, cli, recipes
from chapter13.checkpoints import CheckpointError
from chapter13.evaluate import sample_metrics
from chapter13.plotting import save_grid
from chapter13.recipes import SampleError, SamplerSpec

CONDITIONS = ("label", "prompt", "guidance")
MAX_SEED = 2**63 - 1
"""The largest ``--seed``: torch's generators take 64-bit seeds, and samplers derive ``seed + k``."""
METRICS_MIN_SAMPLES = 2
"""``--metrics`` compares the spread of the samples' features (a Fréchet distance): two at least."""

__all__ = ["SampleError", "SamplerSpec", "check_request", "get_spec", "main", "sample", "write_samples"]


def get_spec(name: str) -> SamplerSpec:
    """The ``SamplerSpec`` of checkpoint ``name``; a clear error for names without one."""
    sampler = recipes.get(name).sampler if name in recipes.FAMILIES else None
    if sampler is None:
        known = ", ".join(sorted(recipes.samplable()))
        raise SampleError(
            f"no sampler for checkpoint {name!r}. Checkpoints you can sample: {known}. "
            "(`python -m chapter13.train --list` lists every checkpoint, including non-diffusion ones.)"
        )
    return sampler()


def given_conditions(label: int | None, prompt: str | None, guidance: float | None) -> dict[str, Any]:
    """The conditions the user set (``None`` means not given)."""
    values = {"label": label, "prompt": prompt, "guidance": guidance}
    return {k: v for k, v in values.items() if v is not None}


def check_conditions(name: str, spec: SamplerSpec, cond: dict[str, Any]) -> None:
    """Refuse conditions that checkpoint ``name`` does not take, and check the values of the others."""
    refused = [k for k in cond if k not in spec.accepts]
    if refused:
        flags = ", ".join(f"--{k}" for k in refused)
        if not spec.accepts:
            raise SampleError(
                f"checkpoint {name!r} is unconditional: it cannot use {flags}. Drop {flags}, or pick a "
                "conditional checkpoint (one trained with labels or text)."
            )
        takes = ", ".join(f"--{k}" for k in sorted(spec.accepts))
        raise SampleError(f"checkpoint {name!r} does not take {flags}; it takes {takes}")
    if "label" in cond and not 0 <= cond["label"] <= 9:
        raise SampleError(f"--label must be a digit 0-9, got {cond['label']}")
    if "guidance" in cond and not (math.isfinite(cond["guidance"]) and cond["guidance"] >= 0):
        raise SampleError(
            f"--guidance must be a finite number >= 0 (1 = no guidance), got {cond['guidance']}"
        )
    if "prompt" in cond and not cond["prompt"].strip():
        raise SampleError("--prompt is empty; give a caption such as 'a thick seven'")


def write_samples(samples: Tensor, out: str | Path) -> Path:
    """Write ``samples``: (N, C, H, W) in [-1, 1] to ``out`` (``.pt`` tensor or ``.png`` grid).

    Raises ``SampleError`` for another suffix and for a file that cannot be written.
    """
    out = Path(out)
    if out.suffix not in (".pt", ".png"):
        raise SampleError(f"--out must end in .pt (tensor) or .png (image grid), got {out.name!r}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".pt":
            with open(out, "wb") as handle:  # an open() error names the path; torch.save's would not
                torch.save(samples.detach().float().cpu().contiguous(), handle)
        else:
            save_grid(samples, str(out), nrow=max(1, math.ceil(math.sqrt(len(samples)))))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SampleError(
            f"cannot write --out {str(out)!r}: {reason}; pick a file in a folder you can write to"
        ) from error
    return out


def sample(
    name: str,
    n: int = 64,
    *,
    steps: int = 50,
    seed: int = 0,
    eta: float = 0.0,
    device: str | None = None,
    progress: bool = False,
    label: int | None = None,
    prompt: str | None = None,
    guidance: float | None = None,
) -> Tensor:
    """Draw ``n`` samples (N, C, H, W) in [-1, 1] from checkpoint ``name`` with DDIM-``steps``."""
    cond = given_conditions(label, prompt, guidance)
    spec = check_request(name, n, steps=steps, seed=seed, eta=eta, cond=cond)
    samples = spec.draw(n, steps=steps, eta=eta, seed=seed, device=device, progress=progress, **cond)
    if samples.ndim != 4 or len(samples) != n:
        raise RuntimeError(
            f"the sampler of {name!r} returned shape {tuple(samples.shape)}, expected ({n}, C, H, W)"
        )
    return samples.float().cpu().clamp(-1.0, 1.0)


def check_request(
    name: str, n: int, *, steps: int, seed: int, eta: float, cond: dict[str, Any]
) -> SamplerSpec:
    """The ``SamplerSpec`` of ``name`` once the request fits it; ``SampleError`` naming the fix if not."""
    spec = get_spec(name)
    if not isinstance(n, int) or n < 1:
        raise SampleError(f"--n must be a positive number of samples, got {n}")
    if not isinstance(steps, int) or not 1 <= steps <= spec.max_steps:
        raise SampleError(f"--steps must lie in 1..{spec.max_steps} (the model's T), got {steps}")
    if not (math.isfinite(eta) and eta >= 0):
        raise SampleError(f"--eta must be a finite number >= 0, got {eta}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise SampleError(f"--seed must be a whole number from 0 to 2**63 - 1 ({MAX_SEED}), got {seed}")
    check_conditions(name, spec, cond)
    return spec


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m chapter13.sample",
        description="Sample a shipped diffusion model with DDIM and write a .pt tensor or a .png grid.",
    )
    parser.add_argument("name", help=f"checkpoint name ({', '.join(sorted(recipes.samplable()))})")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output file: .pt (float tensor) or .png (grid)")
    parser.add_argument(
        "--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic (default), 1 DDPM-like"
    )
    parser.add_argument(
        "--device",
        type=cli.device_arg,
        default=None,
        help="cpu, cuda, cuda:N or mps (default: the model's device, CPU); checked before sampling",
    )
    parser.add_argument("--label", type=int, default=None, help="digit 0-9 (class-conditional checkpoints)")
    parser.add_argument("--prompt", default=None, help="caption (text-conditional checkpoints)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    parser.add_argument("--metrics", action="store_true", help="also print the digit metrics of the samples")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status: 0, or 2 with one ``error: ...`` line on
    stderr for a bad request (``chapter13.cli``'s convention; argument errors exit 2 through
    ``SystemExit`` as argparse's do)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if Path(args.out).suffix not in (".pt", ".png"):
        cli.fail(f"--out must end in .pt (tensor) or .png (image grid), got {args.out!r}")
    if args.metrics and args.n < METRICS_MIN_SAMPLES:
        cli.fail(
            f"--metrics needs at least {METRICS_MIN_SAMPLES} samples (its Fréchet distance compares their "
            f"spread), got --n {args.n}; use --n 2 or more (64 gives steadier figures), or drop --metrics"
        )
    return cli.run(lambda: _run(args), user_errors=(SampleError, CheckpointError))


def _run(args: argparse.Namespace) -> int:
    """``main`` after parsing: every check that needs no sampling first, then sample, write, score."""
    cond = given_conditions(args.label, args.prompt, args.guidance)
    check_request(args.name, args.n, steps=args.steps, seed=args.seed, eta=args.eta, cond=cond)
    cli.writable_file(args.out)
    checkpoints.read_manifest()  # a corrupt manifest fails here, before any model is built
    t0 = time.perf_counter()
    samples = sample(
        args.name, args.n, steps=args.steps, seed=args.seed, eta=args.eta, device=args.device,
        progress=args.progress, label=args.label, prompt=args.prompt, guidance=args.guidance,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    path = write_samples(samples, args.out)
    print(f"wrote {len(samples)} samples {tuple(samples.shape[1:])} to {path} in {seconds:.1f} s")
    if args.metrics:
        if tuple(samples.shape[1:]) != (1, 28, 28):
            print("(--metrics scores 28x28 digits only; skipped)")
        else:
            m = sample_metrics(samples)
            print(
                f"confident {m['confident_fraction']:.1%}, class entropy {m['class_entropy']:.3f}, "
                f"Fréchet {m['frechet_distance']:.2f}, classes {m['class_histogram']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
