import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from diffusion_stepper.core.diffusion.objectives import DDPMObjective, objective_from_dict
from diffusion_stepper.core.errors import TrainingDiverged, UserFacingError
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.data import MnistSplit, load_mnist
from diffusion_stepper.core.mnist.recipes import CONTINUED_LR_FRACTION, TrainConfig, config_for_resume
from diffusion_stepper.core.mnist.training import TRAINED_WEIGHTS, EpochEvent, LossEvent, PreviewEvent, train
from diffusion_stepper.core.training.loop import WeightAverage
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


QUICK_RECIPE = dict(lr_schedule="warmup-cosine", ema_decay=0.9)


@pytest.mark.parametrize(
    "model, objective, recipe",
    [("time", "ddpm", {}), ("class", "flow", QUICK_RECIPE)],
    ids=["course", "quick-recipe"],
)
def test_resume_matches_an_uninterrupted_run(tmp_path, model, objective, recipe):
    data = synthetic_split()
    config = tiny_config(model, objective, batch_size=16, limit=48, epochs=2, epoch_samples=0, **recipe)
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
    # the weights being trained (kept beside their average when there is one) also match
    straight_state = load_file(tmp_path / "straight" / "epoch-002.state.safetensors")
    resumed_state = load_file(tmp_path / "halves" / "epoch-002.state.safetensors")
    assert straight_state.keys() == resumed_state.keys()
    for name in straight_state:
        assert torch.equal(straight_state[name], resumed_state[name]), name


def test_keep_training_adds_epochs_on_a_schedule_of_their_own_and_resumes_like_any_run(tmp_path):
    data = synthetic_split()
    config = tiny_config(
        "class", "flow", batch_size=16, limit=48, epochs=2, epoch_samples=0, log_every=1, **QUICK_RECIPE
    )
    list(train(config, data, tmp_path / "run"))
    first_run = load_file(tmp_path / "run" / "epoch-002.safetensors")
    kept = config_for_resume(tmp_path / "run" / "epoch-002.json", more_epochs=2)
    assert (kept.epochs, kept.continued_after_epoch) == (4, 2)
    events = list(train(kept, data, tmp_path / "run", resume_from=tmp_path / "run" / "epoch-002.json"))
    losses = [event for event in events if isinstance(event, LossEvent)]
    assert [event.epoch for event in events if isinstance(event, EpochEvent)] == [3, 4]
    assert losses[0].iteration == 7  # 3 batches an epoch: it goes on from iteration 6
    lr = config.lr * CONTINUED_LR_FRACTION
    assert losses[0].lr == pytest.approx(lr)  # its warm-up (5% of 6 iterations) is one iteration
    assert losses[-1].lr < 0.1 * lr  # and falls to (almost) nothing at its end
    kept_weights = load_file(tmp_path / "run" / "epoch-004.safetensors")
    assert any(not torch.equal(first_run[name], kept_weights[name]) for name in first_run)  # it trained on
    sidecar = json.loads((tmp_path / "run" / "epoch-004.json").read_text())
    assert sidecar["hyperparameters"]["continued_after_epoch"] == 2 and sidecar["epochs"] == 4
    # the kept run stopped after epoch 3 and resumed ends where the straight one did
    resumed = config_for_resume(tmp_path / "run" / "epoch-003.json", epochs=4)
    assert resumed.continued_after_epoch == 2
    list(train(resumed, data, tmp_path / "again", resume_from=tmp_path / "run" / "epoch-003.json"))
    straight = load_file(tmp_path / "run" / "epoch-004.safetensors")
    again = load_file(tmp_path / "again" / "epoch-004.safetensors")
    assert all(torch.equal(straight[name], again[name]) for name in straight)
    with pytest.raises(UserFacingError, match="positive"):
        config_for_resume(tmp_path / "run" / "epoch-004.json", more_epochs=0)


def test_with_a_weight_average_the_checkpoint_holds_the_average_and_the_state_the_trained_weights(tmp_path):
    config = tiny_config("class", "flow", batch_size=16, limit=48, epochs=1, epoch_samples=0, ema_decay=0.9)
    events = list(train(config, synthetic_split(), tmp_path))
    sidecar = json.loads(events[-1].checkpoint.read_text())
    assert "moving average" in sidecar["weights_are"]
    average = load_file(tmp_path / "epoch-001.safetensors")
    state = load_file(tmp_path / "epoch-001.state.safetensors")
    prefix = f"{TRAINED_WEIGHTS}."
    trained = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    assert trained.keys() == average.keys()
    assert not torch.equal(trained["head.weight"], average["head.weight"])
    assert torch.equal(trained["conv_in.0.1.running_mean"], average["conv_in.0.1.running_mean"])  # copied


def test_the_weight_average_moves_towards_the_weights_at_its_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    averaged = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    averaged.update(iteration=100)  # past the warm-up: the decay is 0.5
    assert averaged.average.weight.item() == pytest.approx(0.5)
    averaged.update(iteration=0)  # at the start the decay is 1/10: the average follows the weights
    assert averaged.average.weight.item() == pytest.approx(0.5 + 0.9 * 0.5)
    assert not WeightAverage(model, 0.0).enabled and WeightAverage(model, 0.0).average is model


def test_learning_rate_schedules():
    config = tiny_config("class", "flow", epochs=4, lr=1.0)
    # 4 epochs of 100 iterations
    assert [config.learning_rate(epoch, 0, 100) for epoch in (1, 4)] == pytest.approx([1.0, 0.1 ** (3 / 4)])
    config.lr_schedule = "warmup-cosine"
    warmup = [config.learning_rate(1, i, 100) for i in range(20)]  # 5% of 400 iterations
    assert warmup == pytest.approx([(i + 1) / 20 for i in range(20)])
    assert config.learning_rate(3, 210, 100) == pytest.approx(0.5)  # halfway through the cosine
    assert 0 < config.learning_rate(4, 399, 100) < 1e-4
    # kept training for 4 more epochs: the same shape again over iterations 400-799, from 30% of the rate
    config.epochs, config.continued_after_epoch = 8, 4
    assert config.learning_rate(5, 400, 100) == pytest.approx(CONTINUED_LR_FRACTION / 20)
    assert config.learning_rate(7, 610, 100) == pytest.approx(CONTINUED_LR_FRACTION * 0.5)
    assert 0 < config.learning_rate(8, 799, 100) < 1e-4
    config.lr_schedule = "exponential"
    assert config.learning_rate(5, 400, 100) == pytest.approx(CONTINUED_LR_FRACTION)
    assert config.learning_rate(8, 799, 100) == pytest.approx(CONTINUED_LR_FRACTION * 0.1 ** (3 / 4))
    config.lr_schedule = "constant"
    assert config.learning_rate(8, 799, 100) == pytest.approx(CONTINUED_LR_FRACTION)
    config.epochs, config.continued_after_epoch = 4, 0
    old = TrainConfig.from_hyperparameters({**dataclasses.asdict(config), "lr_decay": False})
    assert old.lr_schedule == "constant"  # a sidecar written before lr_schedule existed


def test_previews_come_between_iterations_and_leave_the_training_as_it_was(tmp_path):
    data = synthetic_split()
    config = tiny_config("class", "flow", batch_size=16, limit=64, epochs=1, epoch_samples=10, epoch_sample_steps=2)
    list(train(config, data, tmp_path / "plain"))
    config.preview_seconds = 1e-6  # after every iteration
    events = list(train(config, data, tmp_path / "previewed"))
    previews = [event for event in events if isinstance(event, PreviewEvent)]
    assert [event.iteration for event in previews] == [1, 2, 3]  # none after the last: the epoch grid follows
    assert previews[0].samples.shape == (10, 1, 28, 28) and previews[0].sample_labels.tolist() == list(range(10))
    assert previews[0].sampling == "seed 0, 2 Euler steps, CFG γ = 5, one column per digit"
    plain = load_file(tmp_path / "plain" / "epoch-001.safetensors")
    previewed = load_file(tmp_path / "previewed" / "epoch-001.safetensors")
    assert all(torch.equal(plain[name], previewed[name]) for name in plain)


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


@pytest.mark.slow  # 80 training iterations
def test_the_pure_noise_denoiser_sees_noise_alone_and_learns_the_mean_digit(tmp_path):
    from diffusion_stepper.core.diffusion.objectives import SingleStepObjective

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
