"""13.2 measured claims: toy training time, sampler quality vs steps, the book's errata, widget and U-Net speed.

    .venv/bin/python benchmarks/bench_diffusion.py            # full size (about 3-4 CPU-minutes)
    .venv/bin/python benchmarks/bench_diffusion.py --quick    # a smoke run

Quality on the 2-D toy data is the mean distance from each sample to its nearest data point
("sample→data") and from each data point to its nearest sample ("data→sample"), from
``chapter13.toy.chamfer_distance``, and the samples' spread (mean per-axis std) relative to the data's:
the book's ``sample()`` lands on the spiral but with too small a spread (piled on the inner turn). Times are wall clock and this process's CPU time on the machine it
runs on; the load average is printed, because on a shared CPU the wall time grows with other jobs.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from chapter13.book import sec13_2 as book
from chapter13.cost import parameter_count
from chapter13.data import load_mnist
from chapter13.diffusion import NoiseSchedule, diffusion_loss, sample_ddim, sample_ddpm
from chapter13.toy import chamfer_distance, make_toy_data, toy_schedule, train_toy
from chapter13.unet import UNet
from chapter13.widgets.schedule import time_updates


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--data", default="spiral", help="toy data set: spiral, mixture or moons")
    args = parser.parse_args()
    quick = args.quick
    print(f"load average before: {os.getloadavg()}; torch {torch.__version__}; quick={quick}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy models are tiny: one thread is fastest

    # --- schedules -------------------------------------------------------------------------------
    rows = []
    for name in ("linear", "cosine", "quadratic", "sigmoid"):
        s = getattr(NoiseSchedule, name)(1000)
        rows.append([name, s.alpha_bars[499].item(), int((s.alpha_bars < 0.01).sum()), s.betas.max().item()])
    table("Schedules, T = 1000", ["family", "ᾱ at t = T/2", "steps with ᾱ < 0.01", "max β"], rows)

    # --- toy training --------------------------------------------------------------------------------
    steps = 200 if quick else 3000
    n_samples = 300 if quick else 2000
    data = make_toy_data(args.data, 4000)
    schedule = toy_schedule()
    result, wall, cpu = timed(lambda: train_toy(data, schedule, steps=steps, progress=False))
    model = result.ema_model
    tail = result.losses[-max(1, steps // 10) :]
    table(
        f"Toy denoiser training ({args.data}, 4000 points)",
        ["steps", "batch", "parameters", "wall s", "CPU s", "final loss"],
        [[steps, 256, parameter_count(model), wall, cpu, sum(tail) / len(tail)]],
    )

    # --- samplers -----------------------------------------------------------------------------------
    def quality(x: torch.Tensor) -> list[float]:
        """sample→data, data→sample, spread (mean per-axis std) relative to the data's."""
        return [*chamfer_distance(x, data), x.std(0).mean().item() / data.std(0).mean().item()]

    rows = []
    rows.append(["fresh data (ideal)", "-", "-", *quality(make_toy_data(args.data, n_samples, seed=1))])
    rows.append(["N(0, I) noise", "-", "-", *quality(torch.randn(n_samples, 2))])
    counts = [10, 50] if quick else [10, 20, 50, 100, 1000]
    for k in counts:
        for name, sampler in (("DDIM η=0", sample_ddim), ("DDPM (respaced)", sample_ddpm)):
            gen = torch.Generator().manual_seed(0)
            x, w, _ = timed(
                lambda sampler=sampler, k=k, gen=gen: sampler(
                    model, schedule, (n_samples, 2), steps=k, generator=gen, device="cpu", progress=False
                )
            )
            rows.append([name, k, w, *quality(x)])
    torch.manual_seed(0)
    x, w, _ = timed(lambda: book.sample(model, (n_samples, 2), schedule.betas.float()))
    rows.append(["book sample() (wrong coefficient)", 1000, w, *quality(x)])
    x, w, _ = timed(
        lambda: book.sample_from_model(model, schedule.betas.float(), (n_samples, 2), num_steps=50)
    )
    rows.append(["book sample_from_model() (one-step posterior)", 50, w, *quality(x)])
    table(
        f"Sampling the toy model ({n_samples} points)",
        ["sampler", "steps", "wall s", "sample→data", "data→sample", "spread / data spread"],
        rows,
    )

    # --- the book's forward process ------------------------------------------------------------------
    x, _ = load_mnist("test")
    x0 = x[:256]
    linear = NoiseSchedule.linear(1000)
    t = torch.full((256,), 999)
    torch.manual_seed(0)
    book_xt, eps = book.forward_diffusion(x0, t, linear.betas.float())
    ours = linear.q_sample(x0, t, eps)

    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()

    table(
        "Forward process at t = 999 (256 test digits)",
        ["version", "corr(x_999, x_0)", "std(x_999)"],
        [["book forward_diffusion (α_t)", corr(book_xt, x0), book_xt.std().item()],
         ["q_sample (ᾱ_t, DDPM eq. 4)", corr(ours, x0), ours.std().item()]],
    )  # fmt: skip

    # --- widget ---------------------------------------------------------------------------------------
    timing = time_updates(x0[0], n=5 if quick else 20)
    table(
        "Noise-schedule widget update (median)",
        ["data only ms", "data + render + PNG ms (wall)", "data + render + PNG ms (CPU)", "budget ms"],
        [[1000 * timing["update_s"], 1000 * timing["update_and_render_s"],
          1000 * timing["update_and_render_cpu_s"], 100.0]],
    )  # fmt: skip

    # --- U-Net ------------------------------------------------------------------------------------------
    torch.set_num_threads(threads)
    unet = UNet()
    batch = x[:64]
    mnist_schedule = NoiseSchedule.linear(1000)
    loss_fn = lambda: diffusion_loss(unet, mnist_schedule, batch).backward()
    loss_fn()  # warm-up
    _, w_train, c_train = timed(loss_fn)
    unet.eval()
    with torch.no_grad():
        _, w_fwd, _ = timed(lambda: unet(batch, torch.zeros(64, dtype=torch.long)))
    table(
        f"U-Net (default config, {torch.get_num_threads()} threads), batch 64 of 28×28",
        ["parameters", "forward wall s", "forward+backward wall s", "forward+backward CPU s"],
        [[parameter_count(unet), w_fwd, w_train, c_train]],
    )
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
