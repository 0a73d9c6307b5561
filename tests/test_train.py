import pytest
import torch
from torch import nn

from chapter13.train import EMA, fit, warmup_cosine


def _linear_problem(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return x, y


def _mse(model, batch):
    x, y = batch
    return (model(x).squeeze(-1) - y).pow(2).mean()


def test_fit_learns_a_linear_map():
    x, y = _linear_problem()
    torch.manual_seed(0)
    result = fit(
        nn.Linear(3, 1),
        _mse,
        (x, y),
        steps=400,
        batch_size=64,
        lr=0.05,
        warmup=10,
        progress=False,
        device="cpu",
    )
    assert result.losses[-1] < 1e-3 < result.losses[0]
    assert torch.allclose(result.model.weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=0.02)
    assert result.steps == 400 and len(result.losses) == 400 and result.seconds > 0
    assert not result.ema_model.training


def test_fit_is_reproducible():
    x, y = _linear_problem()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append(fit(nn.Linear(3, 1), _mse, (x, y), steps=50, progress=False, device="cpu", seed=7))
    assert runs[0].losses == runs[1].losses


def test_nan_guard_stops_with_a_message():
    x, y = _linear_problem()
    y[::2] = float("nan")
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        fit(nn.Linear(3, 1), _mse, (x, y), steps=10, progress=False, device="cpu")


def test_resume_continues_exactly(tmp_path):
    x, y = _linear_problem()
    torch.manual_seed(3)
    start = nn.Linear(3, 1)
    init = {k: v.clone() for k, v in start.state_dict().items()}

    straight = fit(start, _mse, (x, y), steps=60, lr=0.01, warmup=5, progress=False, device="cpu")

    calls = {"n": 0}

    def crashes_once(model, batch):
        calls["n"] += 1
        if calls["n"] == 45:
            raise KeyboardInterrupt
        return _mse(model, batch)

    interrupted = nn.Linear(3, 1)
    interrupted.load_state_dict(init)
    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(
            interrupted,
            crashes_once,
            (x, y),
            steps=60,
            lr=0.01,
            warmup=5,
            progress=False,
            device="cpu",
            checkpoint_path=path,
            checkpoint_every=20,
        )
    assert path.exists()  # written at step 20 and 40, atomically
    fresh = nn.Linear(3, 1)
    resumed = fit(
        fresh,
        _mse,
        (x, y),
        steps=60,
        lr=0.01,
        warmup=5,
        progress=False,
        device="cpu",
        checkpoint_path=path,
        resume=True,
    )
    assert len(resumed.losses) == 60
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-6)
    assert torch.allclose(resumed.model.weight, straight.model.weight)
    assert torch.allclose(resumed.ema_model.weight, straight.ema_model.weight)


def test_resume_without_state_is_an_error(tmp_path):
    x, y = _linear_problem()
    with pytest.raises(FileNotFoundError, match="no training state"):
        fit(
            nn.Linear(3, 1),
            _mse,
            (x, y),
            steps=5,
            progress=False,
            device="cpu",
            checkpoint_path=tmp_path / "none.pt",
            resume=True,
        )


def test_bad_arguments():
    x, y = _linear_problem()
    with pytest.raises(ValueError, match="disagree in length"):
        fit(nn.Linear(3, 1), _mse, (x, y[:10]), steps=5, progress=False, device="cpu")
    with pytest.raises(ValueError, match="steps must be at least 1"):
        fit(nn.Linear(3, 1), _mse, (x, y), steps=0, progress=False, device="cpu")


def test_ema_tracks_the_average():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # warm-up decay min(0.5, 2/11) = 2/11
    assert ema.model.weight.item() == pytest.approx(1 - 2 / 11)
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.1)


def test_fit_trains_when_the_caller_switched_gradients_off():
    """A notebook cell under ``torch.no_grad()`` must not make training a silent no-op."""
    x, y = _linear_problem()
    torch.manual_seed(0)
    free = fit(nn.Linear(3, 1), _mse, (x, y), steps=20, progress=False, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        switched_off = fit(nn.Linear(3, 1), _mse, (x, y), steps=20, progress=False, device="cpu")
    assert switched_off.losses == free.losses
    assert torch.equal(switched_off.model.weight, free.model.weight)


def test_run_record_fields():
    from chapter13.train import RunRecord

    with RunRecord() as run:
        sum(i * i for i in range(100_000))
    fields = run.quality_fields()
    assert set(fields) == {"train_cpu_seconds", "load_average_before", "load_average_after", "torch_threads"}
    assert fields["train_cpu_seconds"] >= 0 and fields["torch_threads"] == torch.get_num_threads()


# --- NaN gradients with a finite loss (issue 17.2): nothing non-finite is ever saved ------------------------


def _nan_gradient_at(call: int):
    """A loss that stays finite at every step but whose gradient is NaN at the ``call``-th call:
    ``torch.where`` picks the finite branch, yet backpropagates 0 * inf = NaN through the other one."""
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        loss = _mse(model, batch)
        if calls["n"] == call:
            s = model.weight.sum()
            loss = loss + torch.where(torch.tensor(True), torch.zeros(()), torch.sqrt(-s.abs() - 1.0))
            assert torch.isfinite(loss)
        return loss

    return loss_fn


def _fit_kwargs(path, **overrides):
    settings = dict(steps=12, lr=0.01, warmup=2, progress=False, device="cpu", checkpoint_path=path)
    settings.update(checkpoint_every=4)
    return {**settings, **overrides}


def test_nan_gradient_never_overwrites_the_last_good_checkpoint(tmp_path):
    """Without clipping the NaN gradient reaches the weights and the EMA at step 8, just before the
    checkpoint due then: fit refuses to write it, names the step, and step 4's checkpoint survives."""
    x, y = _linear_problem()
    path = tmp_path / "state.pt"
    with pytest.raises(
        FloatingPointError,
        match=r"NaN or inf values after step 8 \(model weights or buffers: weight.*EMA weights: weight.*"
        r"optimiser state.*was not overwritten and still holds the last good state, from step 4",
    ):
        fit(nn.Linear(3, 1), _nan_gradient_at(8), (x, y), **_fit_kwargs(path, grad_clip=None))
    state = torch.load(path, weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert all(torch.isfinite(v).all() for v in state["ema"]["model"].values())
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    # and the last good state resumes
    resumed = fit(nn.Linear(3, 1), _mse, (x, y), **_fit_kwargs(path, resume=True))
    assert len(resumed.losses) == 12 and all(torch.isfinite(p).all() for p in resumed.model.parameters())


def test_nan_gradient_is_caught_at_its_step_when_clipping(tmp_path):
    """With gradient clipping (the default) the NaN gradient norm stops training at the step it
    appears, before the optimiser step: the weights stay finite and the checkpoint stays at step 4."""
    x, y = _linear_problem()
    path = tmp_path / "state.pt"
    model = nn.Linear(3, 1)
    with pytest.raises(
        FloatingPointError,
        match=r"loss was finite .* gradient is nan at step 6.*holds the last good state \(step 4\)",
    ):
        fit(model, _nan_gradient_at(7), (x, y), **_fit_kwargs(path))
    assert torch.load(path, weights_only=True)["step"] == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_weights_at_the_end_are_an_error_even_without_checkpoints():
    """A NaN gradient in the last step would return NaN weights silently: fit raises instead."""
    x, y = _linear_problem()
    with pytest.raises(FloatingPointError, match=r"after step 5 .*nothing was saved"):
        fit(
            nn.Linear(3, 1),
            _nan_gradient_at(5),
            (x, y),
            steps=5,
            grad_clip=None,
            progress=False,
            device="cpu",
        )


class _Scaled(nn.Linear):
    def __init__(self):
        super().__init__(3, 1)
        self.register_buffer("scale", torch.ones(1))

    def forward(self, x):
        return super().forward(x) * self.scale.clone()  # the in-place poisoning below leaves autograd alone


def test_nan_buffer_is_not_saved(tmp_path):
    """Buffers count too (e.g. running statistics): a NaN buffer at a checkpoint step is refused."""
    x, y = _linear_problem()
    calls = {"n": 0}

    def poisons_the_buffer(model, batch):
        calls["n"] += 1
        loss = _mse(model, batch)
        if calls["n"] == 8:
            model.scale.fill_(float("nan"))
        return loss

    with pytest.raises(
        FloatingPointError, match=r"after step 8 \(model weights or buffers: scale; EMA weights: scale\)"
    ):
        fit(_Scaled(), poisons_the_buffer, (x, y), **_fit_kwargs(tmp_path / "state.pt", ema_decay=0.9))
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 4


# --- where builds write (issue 17.4) --------------------------------------------------------------------


def test_build_and_save_run_write_where_they_are_told(tmp_path, monkeypatch):
    """``build(name, directory=...)`` and ``save_run`` (default: config.USER_CHECKPOINT_DIR) write their
    folder only; the shipped data/checkpoints stays byte for byte as it was."""
    import sys
    import types

    from chapter13 import checkpoints, config, recipes, train
    from chapter13.recipes import Built, Recipe

    class Tiny(nn.Linear):
        def __init__(self, width: int = 3):
            super().__init__(width, 1)
            self.config = {"width": width}

    def tiny_build():
        torch.manual_seed(0)
        model = Tiny(3)
        return Built(model, dict(model.config), 1.5, {"fake": 1.0})

    family = types.ModuleType("chapter13.recipes.tiny_build_family")
    family.RECIPES = (Recipe("codelab-mnist", "stand-in", Tiny, tiny_build),)
    monkeypatch.setitem(sys.modules, family.__name__, family)
    monkeypatch.setitem(recipes.FAMILIES, "codelab-mnist", "tiny_build_family")
    shipped = {p.name: p.stat().st_mtime_ns for p in config.CHECKPOINT_DIR.iterdir()}
    # a stand-in for data/checkpoints: a save that wrongly falls back to the shipped folder lands here
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", tmp_path / "shipped")

    model = train.build("codelab-mnist", directory=tmp_path / "built")
    assert (tmp_path / "built" / "codelab-mnist.pt").exists()
    loaded = checkpoints.load_model("codelab-mnist", directory=tmp_path / "built")
    assert torch.equal(loaded.weight, model.weight)

    user = tmp_path / "user"
    monkeypatch.setattr(train, "USER_CHECKPOINT_DIR", user)
    x, y = _linear_problem()
    result = fit(Tiny(3), _mse, (x, y), steps=5, progress=False, device="cpu")
    path = train.save_run("codelab-mnist", result, notes="a notebook run")
    assert path == user / "codelab-mnist.pt"
    info = checkpoints.entry("codelab-mnist", user)
    assert info["quality"]["steps"] == 5 and info["notes"] == "a notebook run"
    assert torch.equal(
        checkpoints.load_model("codelab-mnist", directory=user).weight, result.ema_model.weight
    )
    assert not (tmp_path / "shipped").exists()
    assert {p.name: p.stat().st_mtime_ns for p in config.CHECKPOINT_DIR.iterdir()} == shipped
    with pytest.raises(TypeError, match="holds a Tiny, but this run trained a Linear"):
        train.save_run(
            "codelab-mnist", fit(nn.Linear(3, 1), _mse, (x, y), steps=2, progress=False, device="cpu")
        )
    result.ema_model.config = None  # a model that keeps no .config (TinyCLIP, VAE): pass config=
    with pytest.raises(TypeError, match="pass config="):
        train.save_run("codelab-mnist", result)
    assert train.save_run("codelab-mnist", result, {"width": 3}) == path
