import json

import pytest
import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective
from diffusion_stepper.core.errors import TrainingDiverged, UserFacingError
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.data import MnistSplit, load_mnist
from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent, train
from tests.conftest import tiny_config


def synthetic_split(count=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)
    return MnistSplit(images, torch.arange(count) % 10)


@pytest.mark.slow
def test_fifty_iterations_on_real_mnist_lower_the_loss(tmp_path, mnist_dir):
    data = load_mnist("train", mnist_dir)
    config = tiny_config("time", "ddpm", hidden=16, batch_size=32, limit=1600, epochs=1, log_every=5, epoch_samples=0)
    losses = []
    for event in train(config, data, tmp_path):
        if isinstance(event, LossEvent):
            losses.extend(event.losses)
    assert len(losses) == 50
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, f"loss went from {first:.3f} to {last:.3f}"


def test_events_and_checkpoints(tmp_path):
    config = tiny_config(
        "class", "flow", batch_size=16, limit=40, epochs=2, log_every=2, epoch_samples=10, epoch_sample_steps=2
    )
    events = list(train(config, synthetic_split(), tmp_path))
    loss_events = [e for e in events if isinstance(e, LossEvent)]
    epoch_events = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epoch_events] == [1, 2]
    assert [e.iteration for e in loss_events] == [2, 3, 5, 6]  # 3 batches of 16 from 40 images per epoch
    assert loss_events[-1].epoch_iteration == loss_events[-1].epoch_iterations == 3
    assert loss_events[0].lr == pytest.approx(1e-2)
    assert loss_events[-1].lr == pytest.approx(1e-2 * 0.1 ** (1 / 2))  # decayed once, after epoch 1
    samples = epoch_events[0].samples
    assert samples.shape == (10, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    assert epoch_events[0].sample_labels.tolist() == list(range(10))
    sidecar = json.loads(epoch_events[1].checkpoint.read_text())
    assert sidecar["architecture"]["name"] == "class" and sidecar["architecture"]["hidden"] == 4
    assert sidecar["objective"] == {"name": "flow", "num_ts": 8}
    assert sidecar["hyperparameters"]["batch_size"] == 16 and sidecar["epoch"] == 2
    assert sidecar["data"]["images"] == 40 and sidecar["data"]["limit"] == 40
    loaded = load_checkpoint(epoch_events[1].checkpoint)
    assert loaded.is_class_conditioned and not loaded.model.training
    assert not list(tmp_path.glob(".*partial"))


def test_resume_matches_an_uninterrupted_run(tmp_path):
    data = synthetic_split()
    config = tiny_config("time", "ddpm", batch_size=16, limit=48, epochs=2, epoch_samples=0)
    list(train(config, data, tmp_path / "straight"))
    interrupted = train(config, data, tmp_path / "halves")
    for event in interrupted:
        if isinstance(event, EpochEvent):
            break  # stopped after the first epoch, as the GUI's Stop would
    interrupted.close()
    list(train(config, data, tmp_path / "halves", resume_from=tmp_path / "halves" / "epoch-001.json"))
    straight = load_checkpoint(tmp_path / "straight").model.state_dict()
    resumed = load_checkpoint(tmp_path / "halves").model.state_dict()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_nan_loss_stops_with_epoch_and_iteration_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    config = tiny_config("time", "ddpm", batch_size=16, limit=48, epochs=3, epoch_samples=0, log_every=2)
    original = DDPMObjective.training_loss
    calls = {"n": 0}

    def poisoned(self, *args):
        calls["n"] += 1
        loss = original(self, *args)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(DDPMObjective, "training_loss", poisoned)
    events = train(config, synthetic_split(), tmp_path)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, iteration 5"):
        for _ in events:
            pass
    before = (tmp_path / "epoch-001.safetensors").read_bytes()
    assert load_checkpoint(tmp_path / "epoch-001.json").sidecar["epoch"] == 1
    assert not (tmp_path / "epoch-002.json").exists()
    assert (tmp_path / "epoch-001.safetensors").read_bytes() == before


def test_out_of_memory_suggests_a_smaller_batch(tmp_path, monkeypatch):
    def out_of_memory(self, *args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DDPMObjective, "training_loss", out_of_memory)
    config = tiny_config("time", "ddpm", batch_size=64, limit=64, epochs=1, epoch_samples=0)
    with pytest.raises(
        UserFacingError, match=r"out of .* memory at batch size 64 .*try a smaller batch size, such as 32"
    ):
        list(train(config, synthetic_split(), tmp_path))


def test_stopping_mid_epoch_leaves_checkpoints_intact(tmp_path):
    config = tiny_config("single-step", batch_size=8, limit=64, epochs=3, epoch_samples=0, log_every=1)
    events = train(config, synthetic_split(), tmp_path)
    for event in events:
        if isinstance(event, LossEvent) and event.epoch == 2 and event.epoch_iteration == 3:
            break
    events.close()  # what the GUI's Stop does
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-001.json",
        "epoch-001.safetensors",
        "epoch-001.state.safetensors",
    ]
    assert load_checkpoint(tmp_path).sidecar["epoch"] == 1


def test_bad_configs(tmp_path):
    with pytest.raises(UserFacingError, match="single-step"):
        config = tiny_config("time", "ddpm")
        config.objective = "single-step"
        list(train(config, synthetic_split(), tmp_path))
    with pytest.raises(UserFacingError, match="lr must be positive"):
        list(train(tiny_config("time", "ddpm", lr=0.0), synthetic_split(), tmp_path))


def test_the_pure_noise_denoiser_sees_noise_alone_and_learns_the_mean_digit(tmp_path):
    from diffusion_stepper.core.diffusion.objectives import SingleStepObjective, objective_from_dict

    objective = SingleStepObjective(pure_noise=True)
    seen = []

    def record(z, t, cond):
        seen.append(z)
        return torch.zeros_like(z)

    digits = torch.ones(4, 1, 28, 28)
    objective.training_loss(record, digits, None, torch.Generator().manual_seed(0))
    objective.training_loss(record, torch.zeros_like(digits), None, torch.Generator().manual_seed(0))
    assert torch.equal(seen[0], seen[1]), "the input must not depend on the digits"
    assert objective_from_dict(objective.to_dict()).pure_noise and objective.timesteps() == [1.0, 0.0]

    # Trained on two "digits" (all black, all white), it converges to their average, 0.5.
    images = torch.cat([torch.zeros(32, 28, 28, dtype=torch.uint8), torch.full((32, 28, 28), 255, dtype=torch.uint8)])
    images = images.repeat(40, 1, 1)  # 40 batches of 64 per epoch
    config = tiny_config(
        "single-step", batch_size=64, epochs=2, lr=3e-2, lr_decay=False, pure_noise=True, epoch_samples=0
    )
    *_, last_epoch = train(config, MnistSplit(images, torch.zeros(images.shape[0], dtype=torch.int64)), tmp_path)
    model = load_checkpoint(last_epoch.checkpoint).model
    with torch.no_grad():
        output = model(torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)), None, None)
    assert output.mean().item() == pytest.approx(0.5, abs=0.1)


def test_checkpoint_files_are_readable_like_any_new_file(tmp_path):
    """safetensors writes its files as 0600; saved checkpoints get the usual umask mode instead."""
    import os

    config = tiny_config("time", "ddpm", batch_size=16, limit=16, epochs=1, epoch_samples=0)
    events = list(train(config, synthetic_split(), tmp_path))
    umask = os.umask(0)
    os.umask(umask)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    assert events[-1].checkpoint.is_file()
