"""Every shipped checkpoint gives the outputs it gave before the architecture change (issue 13).

``tests/pinned_outputs.json`` was written from the code *before* the recipes moved out of the model
modules (``python tests/test_pinned_outputs.py --write`` at commit 13ac8e7). For each checkpoint it
holds a few values of one seeded output (a short DDIM run for the diffusion models, a forward pass
for the others), their sum, and the SHA-256 of the whole output's bytes.

``codelab-mnist`` was re-pinned when it was retrained (issue 15: 14,000 + 5,000 steps, new weights,
so new outputs; the code path is the same), ``audio-tones`` when it was retrained for 3,000 steps instead of
600 (issue 14), and both video models when they were retrained with GroupNorm capped at 8 groups (the joint one
class-conditional; issue 14), each with only its entry rewritten (``fingerprint(output_of(...))``). An entry
re-pinned on another machine than the file's records its own ``machine``: the SHA-256 is checked where it was written
(the CPU model changes the bits: the video entries were written on an AMD EPYC, the rest on an Intel Xeon).

The values are compared to 1e-5 everywhere; on the machine that wrote the file (same torch build and
CPU model, as in CI) the SHA-256 must match too, which is the bitwise check.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import pytest
import torch

from chapter13 import checkpoints, sample
from chapter13.audio import sample_sounds
from chapter13.codelab import sample_digits
from chapter13.data import load_mnist
from chapter13.hierarchy import auditory_code
from chapter13.multimodal import Tokenizer
from chapter13.temporal import sample_clips

PINS = Path(__file__).with_name("pinned_outputs.json")


def _digits(n: int = 4) -> torch.Tensor:
    x, _ = load_mnist("test", limit=None)
    return x[torch.arange(n) * 97]  # a mix of classes (the split is sorted by class)


def output_of(name: str) -> torch.Tensor:
    """One seeded output of checkpoint ``name``, as a float32 CPU tensor."""
    torch.manual_seed(0)
    with torch.no_grad():
        if name == "codelab-mnist":
            return sample_digits(checkpoints.load_model(name), 2, steps=4, seed=0)
        if name in ("text2image-digits", "latent-text2image-digits"):
            return sample.sample(name, 2, steps=4, seed=0, label=3, guidance=3.0)
        if name in ("video-digits", "video-digits-frames"):
            return sample_clips(checkpoints.load_model(name), 1, steps=3, seed=0)
        if name == "audio-tones":
            return sample_sounds(checkpoints.load_model(name), 1, steps=3, seed=0)
        model = checkpoints.load_model(name)
        if name in ("digit-classifier", "hierarchy-digits"):
            return model(_digits())
        if name == "autoencoder-digits":
            mean, _ = model.encode(_digits())
            return torch.cat([mean.flatten(), model.decode(mean).flatten()])
        if name == "clip-digits":
            ids, mask = Tokenizer(max_length=model.text_encoder.max_length).encode(
                ["a handwritten digit 3", "a thick seven"]
            )
            return torch.cat(
                [model.encode_image(_digits()).flatten(), model.encode_text(ids, mask).flatten()]
            )
        if name == "av-fusion-digits":
            labels = torch.tensor([1, 7, 3, 0])
            sound = auditory_code(labels, 0.5, generator=torch.Generator().manual_seed(0))
            out = model(_digits(), sound)
            return torch.cat([out[k].flatten() for k in sorted(out)])
    raise KeyError(name)


def fingerprint(x: torch.Tensor) -> dict:
    flat = x.detach().float().cpu().contiguous().flatten()
    index = torch.linspace(0, flat.numel() - 1, 8).long()
    return {
        "shape": list(x.shape),
        "values": [float(v) for v in flat[index]],
        "sum": float(flat.double().sum()),
        "sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
    }


def machine() -> str:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text(encoding="utf-8").splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return f"torch {torch.__version__} | {platform.machine()} | {cpu} | threads {torch.get_num_threads()}"


NAMES = sorted(checkpoints.read_manifest())


@pytest.fixture(scope="module")
def pins() -> dict:
    return json.loads(PINS.read_text(encoding="utf-8"))


def test_every_shipped_checkpoint_is_pinned(pins):
    assert sorted(pins["outputs"]) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_output_unchanged(name, pins):
    pinned = pins["outputs"][name]
    got = fingerprint(output_of(name))
    assert got["shape"] == pinned["shape"]
    assert got["values"] == pytest.approx(pinned["values"], abs=1e-5)
    assert got["sum"] == pytest.approx(pinned["sum"], abs=1e-4 * max(1.0, abs(pinned["sum"])))
    if pinned.get("machine", pins["machine"]) == machine():
        assert got["sha256"] == pinned["sha256"], f"{name}: not bitwise identical on the pinning machine"


if __name__ == "__main__":
    if "--write" in sys.argv:
        data = {"machine": machine(), "outputs": {n: fingerprint(output_of(n)) for n in NAMES}}
        PINS.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {PINS}")
