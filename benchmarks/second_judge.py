"""A second judge of generated digits, trained differently from the package's classifier.

Every quality figure of ``chapter13.evaluate`` comes from one classifier, ``digit-classifier``. A
generator tuned while looking at that one number could learn what that classifier likes rather than
what a digit is, so the benchmarks also report a second judge that shares nothing with it but the
training digits:

| | ``digit-classifier`` (the yardstick) | this judge |
|---|---|---|
| architecture | 3x3 convs, GroupNorm, SiLU, dropout 0.3 | LeNet-5-like: 5x5 convs, BatchNorm, ReLU, dropout 0.5 |
| features (Fréchet distance) | 128 | 256 |
| training | shifts and rotations, outlier exposure (noise, blobs, blends) | plain cross-entropy, no augmentation, no outliers |
| seed | 0 | 1 |

No model of the package is trained, selected or tuned with this judge; it is benchmark-only.
Without outlier exposure it is more willing to call a smudge confident than the yardstick
(``python benchmarks/second_judge.py`` prints how it scores noise and blank images), so its confident
fraction is read against what it gives real held-out digits, like the yardstick's.

    python benchmarks/second_judge.py     # train (or load the cached weights), print its test figures

The weights are cached in ``chapter13.config.USER_CHECKPOINT_DIR`` under a name that holds the hash
of ``JUDGE_TRAINING`` and the architecture, so a change retrains (about a minute on one CPU core).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.config import USER_CHECKPOINT_DIR, seed_everything
from chapter13.data import load_mnist
from chapter13.evaluate import accuracy, classify, confident_fraction, held_out_split, sample_metrics
from chapter13.train import fit

JUDGE_TRAINING: dict[str, Any] = {"steps": 1500, "batch_size": 128, "lr": 1e-3, "warmup": 50, "seed": 1}
"""How the second judge is trained: Adam(W) with the package's ``fit``, no EMA, no weight decay."""


class SecondJudge(nn.Module):
    """LeNet-5-like digit classifier (LeCun et al. 1998) with BatchNorm.

    ``conv5x5(1->20)-BN-ReLU-maxpool -> conv5x5(20->50)-BN-ReLU-maxpool -> flatten(50*4*4)
    -> dropout(0.5) -> linear(256)-ReLU`` (the features) ``-> dropout(0.5) -> linear(10)`` (``out``). ``x``: (B, 1, 28, 28) in [-1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 20, 5),
            nn.BatchNorm2d(20),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5),
            nn.BatchNorm2d(50),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(50 * 4 * 4, 256),
            nn.ReLU(),
        )
        self.out = nn.Sequential(nn.Dropout(0.5), nn.Linear(256, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: (B, 1, 28, 28) -> (B, 256)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: (B, 1, 28, 28) -> (B, 10)."""
        return self.out(self.features(x))


def _cache_name(settings: dict[str, Any]) -> str:
    key = json.dumps({"training": settings, "model": repr(SecondJudge())}, sort_keys=True)
    return f"second-judge-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


def train_second_judge(progress: bool = False, **overrides: Any) -> SecondJudge:
    """Train ``SecondJudge`` on the bundled 4,000 training digits (``JUDGE_TRAINING`` + ``overrides``)."""
    settings = {**JUDGE_TRAINING, **overrides}
    seed_everything(settings["seed"])
    x, y = load_mnist("train")
    result = fit(
        SecondJudge(),
        lambda m, batch: F.cross_entropy(m(batch[0]), batch[1]),
        (x, y),
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        warmup=settings["warmup"],
        ema_decay=None,
        seed=settings["seed"],
        device="cpu",
        progress=progress,
        desc="second judge",
    )
    return result.model.eval()


def load_second_judge(progress: bool = False) -> SecondJudge:
    """The second judge, from the cache when its weights are there (``weights_only``), else trained and cached."""
    path = USER_CHECKPOINT_DIR / _cache_name(JUDGE_TRAINING)
    model = SecondJudge()
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    model = train_second_judge(progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


def judge_metrics(samples: torch.Tensor, judge: nn.Module, reference: torch.Tensor) -> dict[str, Any]:
    """``chapter13.evaluate.sample_metrics`` of ``samples`` (N, 1, 28, 28) in [-1, 1] as ``judge``
    sees them, with the Fréchet distance against ``reference`` digits (features of the same judge)."""
    return sample_metrics(samples, classifier=judge, reference_features=classify(reference, judge)[1])


def held_out_metrics(judge: nn.Module, n: int = 256) -> dict[str, Any]:
    """What ``judge`` gives ``n`` real held-out test digits, against the other test digits
    (``chapter13.evaluate.held_out_split``): the figure samples are compared with."""
    yardstick, reference = held_out_split(n)
    return judge_metrics(yardstick, judge, reference)


def main() -> None:
    torch.set_num_threads(1)
    judge = load_second_judge(progress=True)
    x_test, y_test = load_mnist("test")
    real = held_out_metrics(judge)
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    blank = -torch.ones(10, 1, 28, 28)
    print(f"second judge ({sum(p.numel() for p in judge.parameters()):,d} parameters), {JUDGE_TRAINING}")
    print(f"| test accuracy | {accuracy(judge, x_test, y_test):.1%} |")
    print(f"| 256 held-out test digits: confident / entropy / Fréchet | {real['confident_fraction']:.1%} / "
          f"{real['class_entropy']:.3f} / {real['frechet_distance']:.2f} |")  # fmt: skip
    print(f"| uniform noise called confident | {confident_fraction(classify(noise, judge)[0]):.1%} |")
    print(f"| blank images called confident | {confident_fraction(classify(blank, judge)[0]):.1%} |")


if __name__ == "__main__":
    main()
