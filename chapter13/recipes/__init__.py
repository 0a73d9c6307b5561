"""The registry of shipped checkpoints: one ``Recipe`` per name, one file per checkpoint family.

A recipe says how a checkpoint is made and served: the model class its manifest ``config`` rebuilds,
the function that trains and measures it (``train() -> Built``), and, for a generative model, its
``SamplerSpec`` (what ``python -m chapter13.sample NAME`` draws). ``checkpoints`` only stores, loads
and verifies files; it asks this registry which class to rebuild.

    python -m chapter13.train --list          # every name, with its rebuild command
    python -m chapter13.train codelab-mnist   # build(name): train, measure, save

The family modules (``chapter13.recipes.codelab`` ...) import the models, ``train`` and
``checkpoints``; this file imports none of them at the top, so that ``checkpoints`` and
``sample`` can look a name up without an import cycle. ``FAMILIES`` is therefore the one place in
the package that names modules by string (``tests/test_architecture.py`` enforces that).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

FAMILIES: dict[str, str] = {
    "digit-classifier": "classifier",
    "codelab-mnist": "codelab",
    "clip-digits": "clip",
    "text2image-digits": "text2image",
    "autoencoder-digits": "latent",
    "latent-text2image-digits": "latent",
    "video-digits": "video",
    "video-digits-frames": "video",
    "audio-tones": "audio",
    "hierarchy-digits": "hierarchy",
    "av-fusion-digits": "hierarchy",
}
"""Checkpoint name -> the module of ``chapter13.recipes`` that holds its recipe (in build order)."""


class UnknownCheckpoint(KeyError):
    """A name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


class SampleError(ValueError):
    """A request (command line or ``SamplerSpec.draw``) that the checkpoint cannot fulfil."""


@dataclass(frozen=True)
class SamplerSpec:
    """How ``python -m chapter13.sample NAME`` samples one checkpoint.

    ``draw(n, *, steps, eta, seed, device, progress, **cond) -> Tensor (n, C, H, W) in [-1, 1]``, where
    ``cond`` holds only the conditions the user gave, each in ``accepts`` (a subset of
    ``{"label", "prompt", "guidance"}``): ``label`` an int 0-9, ``prompt`` a str, ``guidance`` a float.
    ``max_steps`` is the model's T (the most DDIM steps that make sense). ``draw`` raises
    ``SampleError`` for a request it cannot fulfil (e.g. a prompt with unknown words).
    """

    draw: Callable[..., Tensor]
    accepts: frozenset[str] = frozenset()
    max_steps: int = 1000


@dataclass
class Built:
    """What every recipe's ``train()`` returns: the model to save and what the manifest records."""

    model: nn.Module
    config: dict[str, Any]
    train_seconds: float
    quality: dict[str, Any]
    notes: str = ""


@dataclass(frozen=True)
class Recipe:
    """One shipped checkpoint: ``model(**config)`` rebuilds it, ``train()`` makes it, ``sampler()``
    (generative models only) says how to sample it."""

    name: str
    description: str
    model: type[nn.Module]
    train: Callable[[], Built] = field(repr=False)
    sampler: Callable[[], SamplerSpec] | None = field(default=None, repr=False)


def names() -> list[str]:
    """Every registered checkpoint name, in build order."""
    return list(FAMILIES)


def get(name: str) -> Recipe:
    """The ``Recipe`` of checkpoint ``name``; a clear error for unknown names."""
    if name not in FAMILIES:
        raise UnknownCheckpoint(
            f"unknown checkpoint {name!r}; known checkpoints: {', '.join(sorted(FAMILIES))}"
        )
    module = importlib.import_module(f"{__name__}.{FAMILIES[name]}")
    recipes = {recipe.name: recipe for recipe in getattr(module, "RECIPES", ())}
    if name not in recipes:
        raise UnknownCheckpoint(
            f"checkpoint {name!r} belongs to the family {FAMILIES[name]!r} (FAMILIES), but {module.__name__} "
            f"has no recipe of that name in RECIPES (it has: {', '.join(sorted(recipes)) or 'none'}); "
            f"add a Recipe({name!r}, ...) there or correct FAMILIES"
        )
    return recipes[name]


def rebuild_command(name: str) -> str:
    """The shell command that retrains and rewrites checkpoint ``name``."""
    return f"python -m chapter13.train {name}"


def samplable() -> list[str]:
    """The names that ``python -m chapter13.sample`` can draw from."""
    return [name for name in FAMILIES if get(name).sampler is not None]
