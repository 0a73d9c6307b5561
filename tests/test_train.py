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
