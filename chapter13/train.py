"""One training loop for every model in the chapter.

``fit`` takes a model, a loss function ``loss_fn(model, batch) -> scalar`` and the training tensors,
and runs AdamW with warm-up and cosine decay, gradient clipping, an exponential moving average (EMA)
of the weights, a ``tqdm.auto`` progress bar with the running loss, a NaN guard (the loss, the
gradient and, before every checkpoint write, weights, buffers, EMA and optimiser state), atomic
checkpoint writes and resume. Every section's trainer calls it, so they all behave alike.

Command line: ``python -m chapter13.train NAME`` retrains and rewrites a shipped checkpoint
(``--list`` shows the names): ``build(NAME)`` runs the recipe registered in ``chapter13.recipes``
and saves what it returns with ``chapter13.checkpoints.save``. Notebooks write elsewhere:
``build(NAME, directory=config.USER_CHECKPOINT_DIR)``, or ``save_run`` for a run they trained
themselves, so that a student's training never overwrites the shipped files in ``data/checkpoints``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from chapter13 import checkpoints, cli, recipes
from chapter13.checkpoints import atomic_torch_save, nonfinite_entries
from chapter13.config import USER_CHECKPOINT_DIR, default_device
from chapter13.config import check_finite as check_finite_number
from chapter13.recipes import rebuild_command

Batch = Sequence[torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging).

    ``shadow = decay * shadow + (1 - decay) * weights`` after every step, with the decay warmed up as
    ``min(decay, (1 + n) / (10 + n))`` so that early averages are not dominated by the random start.
    Sampling from the EMA weights is standard for diffusion models (Ho et al. 2020, Appendix B).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for shadow, live in zip(self.model.parameters(), model.parameters(), strict=True):
            shadow.lerp_(live.detach(), 1.0 - d)
        for shadow, live in zip(self.model.buffers(), model.buffers(), strict=True):
            shadow.copy_(live)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.num_updates = int(state["num_updates"])


@dataclass
class TrainResult:
    """What ``fit`` returns: the trained model, its EMA copy (or the model itself), losses, time."""

    model: nn.Module
    ema_model: nn.Module
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 10 %."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _check_data(data: Sequence[torch.Tensor]) -> int:
    if not data:
        raise ValueError("fit() needs at least one training tensor")
    n = len(data[0])
    for i, tensor in enumerate(data):
        if len(tensor) != n:
            raise ValueError(
                f"training tensors disagree in length: tensor 0 has {n} rows, tensor {i} has "
                f"{len(tensor)}; pass tensors that index the same examples"
            )
    if n == 0:
        raise ValueError("the training tensors are empty")
    return n


@torch.enable_grad()  # trains also when the caller switched gradients off (e.g. a notebook cell)
def fit(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[torch.Tensor],
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    warmup: int = 100,
    grad_clip: float | None = 1.0,
    ema_decay: float | None = 0.999,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    desc: str = "training",
) -> TrainResult:
    """Train ``model`` for ``steps`` minibatch steps drawn at random from ``data``.

    Args:
        model: any ``nn.Module``; moved to ``device``.
        loss_fn: ``loss_fn(model, batch) -> loss``, with ``batch`` the tuple of rows of ``data``
            already on the device (for example ``(x, y)``: (B, C, H, W), (B,)).
        data: tensors with the same first dimension (kept on the CPU, batches moved per step).
        steps: number of optimiser steps. ``warmup`` steps of linear warm-up, then cosine decay.
        ema_decay: keep an EMA of the weights (``None`` to switch it off).
        checkpoint_path: where to write the full training state every ``checkpoint_every`` steps and
            at the end (atomically). With ``resume=True`` training continues from that file.

    Raises:
        FloatingPointError: the loss or the gradient became NaN or infinite, or the weights, buffers,
            EMA or optimiser state hold NaN/inf when a checkpoint is due (with the step and what to
            try). Nothing non-finite is ever written: ``checkpoint_path`` keeps the last good state.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if check_finite_number(lr, "lr") <= 0:
        raise ValueError(f"lr must be a positive learning rate, got {lr}; e.g. lr=2e-3")
    if check_finite_number(weight_decay, "weight_decay") < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    n = _check_data(data)
    device = torch.device(device) if device is not None else default_device()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, steps, min(warmup, steps // 2))
    )
    ema = EMA(model, ema_decay) if ema_decay else None
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start_step = 0
    elapsed = 0.0

    path = Path(checkpoint_path) if checkpoint_path else None
    if resume:
        if path is None or not path.exists():
            raise FileNotFoundError(
                f"resume=True but there is no training state at {path}; run once without resume"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        generator.set_state(state["generator"])
        losses = list(state["losses"])
        start_step = int(state["step"])
        elapsed = float(state["seconds"])

    last_saved = start_step if resume else None

    def check_finite(step: int) -> None:
        """Refuse to go on (and to save) with NaN/inf anywhere in the training state."""
        parts = {"model weights or buffers": model.state_dict()}
        if ema is not None:
            parts["EMA weights"] = ema.model.state_dict()
        parts["optimiser state"] = {
            f"{index}.{key}": value
            for index, slot in optimizer.state_dict()["state"].items()
            for key, value in slot.items()
        }
        bad = {what: keys for what, tensors in parts.items() if (keys := nonfinite_entries(tensors))}
        if not bad:
            return
        where = "; ".join(
            f"{what}: {', '.join(keys[:4])}{' ...' * (len(keys) > 4)}" for what, keys in bad.items()
        )
        if path is None:
            kept = "nothing was saved"
        elif last_saved is None:
            kept = f"nothing was written to {path}"
        else:
            kept = f"{path} was not overwritten and still holds the last good state, from step {last_saved}"
        raise FloatingPointError(
            f"{desc}: NaN or inf values after step {step} ({where}); {kept}. The loss stayed finite, so a "
            f"gradient was not: lower the learning rate (now {scheduler.get_last_lr()[0]:.2e}), keep "
            "gradient clipping on, or look for operations with undefined gradients in the loss (sqrt or "
            "log near 0, division by a small number)."
        )

    def save_state(step: int) -> None:
        nonlocal last_saved
        check_finite(step)
        if path is None:
            return
        atomic_torch_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "generator": generator.get_state(),
                "losses": losses,
                "step": step,
                "seconds": elapsed + time.perf_counter() - t0,
            },
            path,
        )
        last_saved = step

    t0 = time.perf_counter()
    bar = tqdm(range(start_step, steps), desc=desc, disable=not progress, mininterval=0.5)
    running = None
    for step in bar:
        index = torch.randint(0, n, (min(batch_size, n),), generator=generator)
        batch = tuple(t[index].to(device, non_blocking=True) for t in data)
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{desc}: the loss became {loss.item()} at step {step}. Lower the learning rate "
                f"(now {scheduler.get_last_lr()[0]:.2e}), keep gradient clipping on, or check the "
                "inputs for NaN."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if not torch.isfinite(norm):
                raise FloatingPointError(
                    f"{desc}: the loss was finite ({loss.item():.4g}) but its gradient is {norm.item()} "
                    f"at step {step}; the weights were not updated"
                    + (
                        f" and {path} still holds the last good state (step {last_saved})"
                        * (last_saved is not None)
                    )
                    + ". Look for operations with undefined gradients (sqrt or log near 0, division by a "
                    "small number) in the loss, or lower the learning rate."
                )
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        value = loss.item()
        losses.append(value)
        running = value if running is None else 0.98 * running + 0.02 * value
        if step % 20 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
        if path is not None and (step + 1) % checkpoint_every == 0:
            save_state(step + 1)
    bar.close()
    save_state(steps)
    seconds = elapsed + time.perf_counter() - t0
    model.eval()
    ema_model = ema.model if ema is not None else model
    return TrainResult(model=model, ema_model=ema_model.eval(), losses=losses, seconds=seconds, steps=steps)


def loss_curve(losses: Sequence[float], points: int = 50) -> list[float]:
    """``losses`` averaged over ``points`` equal windows (a compact curve to store and plot)."""
    if len(losses) == 0:
        raise ValueError("no losses to summarise")
    chunks = torch.tensor(list(losses), dtype=torch.float64).tensor_split(min(points, len(losses)))
    return [round(float(c.mean()), 5) for c in chunks]


def _load_average() -> float | None:
    """The 1-minute load average, or ``None`` where the OS has none (Windows)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


class RunRecord:
    """Context manager around a checkpoint's training run: CPU seconds of this process, torch's
    thread count and the load average before and after, the context a wall time needs.

        with RunRecord() as run:
            result = fit(...)
        quality.update(run.quality_fields())
    """

    def __enter__(self) -> RunRecord:
        self.info: dict[str, Any] = {
            "load_before": _load_average(),
            "threads": torch.get_num_threads(),
        }
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.info["cpu_seconds"] = time.process_time() - self._cpu
        self.info["load_after"] = _load_average()

    def quality_fields(self) -> dict[str, float | int]:
        """The entries a checkpoint's manifest ``quality`` records about the run."""
        return {
            "train_cpu_seconds": round(self.info["cpu_seconds"], 1),
            "load_average_before": self.info["load_before"],
            "load_average_after": self.info["load_after"],
            "torch_threads": self.info["threads"],
        }


def build(name: str, directory: Path | str | None = None) -> nn.Module:
    """Run the recipe of checkpoint ``name`` (train, measure) and save the result with its manifest entry.

    ``directory`` defaults to the shipped folder ``data/checkpoints`` (what ``python -m chapter13.train
    NAME`` rewrites); notebooks pass ``config.USER_CHECKPOINT_DIR``. The recipe itself still reads the
    checkpoints it builds on (e.g. ``clip-digits``, ``autoencoder-digits``) from ``data/checkpoints``.
    """
    recipe = recipes.get(name)
    built = recipe.train()
    path = checkpoints.save(
        name,
        built.model,
        built.config,
        train_seconds=built.train_seconds,
        quality=built.quality,
        notes=built.notes,
        directory=directory,
    )
    print(f"{name}: saved to {path}; {built.train_seconds / 60:.1f} min of training; quality {built.quality}")
    return built.model


def save_run(
    name: str,
    result: TrainResult,
    config: dict[str, Any] | None = None,
    *,
    quality: dict[str, Any] | None = None,
    notes: str = "",
    directory: Path | str | None = None,
) -> Path:
    """Keep a run a notebook trained itself (``TRAIN = True``) as checkpoint ``name``, in the user folder.

    Saves ``result.ema_model`` with ``checkpoints.save`` into ``directory``, by default
    ``config.USER_CHECKPOINT_DIR``, never the shipped ``data/checkpoints`` unless that folder is passed
    by name. ``config`` (the constructor arguments) defaults to the model's ``.config``; ``quality``
    to the run's steps and final loss. Returns the path written;
    ``checkpoints.load_model(name, directory=...)`` loads it again.
    """
    model = result.ema_model
    expected = recipes.get(name).model
    if type(model) is not expected:
        raise TypeError(
            f"checkpoint {name!r} holds a {expected.__name__}, but this run trained a {type(model).__name__}"
        )
    config = getattr(model, "config", None) if config is None else config
    if not isinstance(config, dict):
        raise TypeError(
            f"save_run needs the constructor arguments of the {type(model).__name__}: pass config= "
            f"(a dict, e.g. the recipe's *_CONFIG) or give the model a .config dict"
        )
    if quality is None:
        quality = {"steps": result.steps}
        if result.losses:
            quality["final_loss"] = round(float(loss_curve(result.losses, 20)[-1]), 5)
    return checkpoints.save(
        name,
        model,
        dict(config),
        train_seconds=result.seconds,
        quality=quality,
        notes=notes,
        directory=USER_CHECKPOINT_DIR if directory is None else directory,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chapter13.train NAME | --all | --list``; returns the exit status.

    ``chapter13.cli``'s convention: a user error (an unknown name, a corrupt manifest, a checkpoint
    folder that cannot be written) prints one ``error: ...`` line on stderr and exits 2, checked
    before any training starts.
    """
    parser = cli.ArgumentParser(
        prog="python -m chapter13.train", description="Retrain and rewrite a shipped checkpoint."
    )
    parser.add_argument("name", nargs="?", help="checkpoint name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the checkpoints and exit")
    parser.add_argument("--all", action="store_true", help="rebuild every checkpoint, in registry order")
    args = parser.parse_args(argv)
    if args.all and args.name:
        cli.fail(f"give one checkpoint NAME or --all, not both (got {args.name!r} and --all)")
    if args.name is not None and args.name not in recipes.FAMILIES:
        cli.fail(
            f"unknown checkpoint {args.name!r}; known: {', '.join(recipes.names())} "
            "(`python -m chapter13.train --list` says what each holds)"
        )
    return cli.run(
        lambda: _run_cli(args), user_errors=(checkpoints.CheckpointError, recipes.UnknownCheckpoint)
    )


def _run_cli(args: argparse.Namespace) -> None:
    """``main`` after parsing: list, or check the checkpoint folder and its manifest, then build."""
    if args.list or not (args.name or args.all):
        for name in recipes.names():
            print(f"{name:28s} {recipes.get(name).description}   [{rebuild_command(name)}]")
        return
    folder = Path(checkpoints.CHECKPOINT_DIR)
    cli.writable_folder(
        folder, "the checkpoint folder", "run from a writable clone, or point CH13_DATA at a writable copy"
    )
    checkpoints.read_manifest()  # a corrupt manifest fails now, not after an hour of training
    names = recipes.names() if args.all else [args.name]
    for name in names:
        if args.all:
            print(f"== {rebuild_command(name)}", flush=True)
        build(name)


if __name__ == "__main__":
    raise SystemExit(main())
