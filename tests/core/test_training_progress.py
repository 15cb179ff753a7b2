import pytest

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.recipes import preset_config, recipe
from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent
from diffusion_stepper.core.training_progress import SMOOTHING, LossHistory, format_duration


def loss_event(iteration, losses, epoch=1, epoch_iteration=None, per_epoch=10, seconds=1.0):
    return LossEvent(
        epoch,
        iteration,
        sum(losses) / len(losses),
        losses,
        1e-3,
        100.0,
        epoch_iteration or iteration,
        per_epoch,
        seconds,
    )


def test_history_keeps_every_iteration_and_a_bias_corrected_average():
    history = LossHistory()
    history.add_losses(loss_event(2, [1.0, 0.5]))
    history.add_losses(loss_event(3, [0.25]))
    assert history.iterations == [1, 2, 3] and history.raw == [1.0, 0.5, 0.25]
    assert history.smoothed[0] == 1.0  # no pull towards zero at the start
    w = SMOOTHING
    expected = ((1 - w) * w * 1.0 + (1 - w) * 0.5) / ((1 - w) * w + (1 - w))
    assert history.smoothed[1] == pytest.approx(expected)


def test_time_left_is_the_remaining_batches_at_the_measured_pace():
    history = LossHistory()
    history.add_losses(loss_event(4, [0.1, 0.1, 0.1, 0.1], epoch=1, epoch_iteration=4, per_epoch=10, seconds=2.0))
    # 4 iterations took 2 s; 6 batches are left in epoch 1 and 10 in epoch 2
    assert history.seconds_left(epochs=2) == pytest.approx(16 * 0.5)
    assert "epoch 1/2" in history.readout(2) and "8 s left" in history.readout(2)
    history.add_epoch(EpochEvent(1, 10, 0.1, None, None, None, None, 1.0))
    assert history.epoch_ends == [(10, 1)]


def test_the_readout_puts_time_left_before_the_details_a_narrow_window_may_cut():
    history = LossHistory()
    history.add_losses(loss_event(4, [0.4, 0.3, 0.2, 0.1], epoch=1, epoch_iteration=4, per_epoch=10, seconds=2.0))
    parts = history.readout(2).split(" · ")
    assert parts[:2] == ["epoch 1/2", "8 s left"]
    assert parts[2] == f"loss {history.smoothed[-1]:.4f} (last batch 0.1000)" and parts[3] == "batch 4/10"


def test_a_resumed_run_measures_its_pace_from_its_own_iterations():
    history = LossHistory()
    # resumed after 100 iterations: iterations 101-102 took 1 s of this launch
    history.add_losses(loss_event(102, [0.1, 0.1], epoch=11, epoch_iteration=2, per_epoch=10, seconds=1.0))
    assert history.seconds_left(epochs=11) == pytest.approx(8 * 0.5)


def test_keeping_training_from_a_checkpoint_drops_what_a_stop_left_after_it():
    history = LossHistory()
    history.add_losses(loss_event(10, [1.0] * 10, epoch=1, epoch_iteration=10, seconds=4.0))
    history.add_epoch(EpochEvent(1, 10, 1.0, None, None, None, None, 4.0))
    history.add_losses(loss_event(13, [0.5] * 3, epoch=2, epoch_iteration=3, seconds=6.0))  # then stopped
    assert history.seconds_per_epoch() == pytest.approx(6.0 / 13 * 10)  # this launch's pace
    smoothed_at_checkpoint = history.smoothed[9]
    history.new_launch(from_iteration=10)  # kept training from epoch 1's checkpoint
    assert history.iterations == list(range(1, 11)) and history.epoch_ends == [(10, 1)]
    assert history.trained_seconds(2.0) == 8.0 and history.seconds_per_epoch() is None
    history.add_losses(loss_event(11, [1.0], epoch=2, epoch_iteration=1, seconds=0.5))
    assert history.iterations[-2:] == [10, 11] and history.first_iteration == 10
    assert history.smoothed[-1] == pytest.approx(smoothed_at_checkpoint)  # all 1.0: the average goes on


def test_format_duration():
    assert format_duration(4.2) == "5 s"
    assert format_duration(252) == "4 min 12 s"
    assert format_duration(3 * 3600 + 60) == "3 h 01 min"


def test_the_quick_preset_is_the_course_unet_and_objective_on_a_subset():
    quick, course = preset_config("quick"), preset_config("course")
    assert (quick.model, quick.objective, course.objective) == ("class", "flow", "ddpm")
    assert quick.hidden < course.hidden and quick.limit * quick.epochs < 60000
    assert preset_config("quick", "class", "ddpm").objective == "ddpm"
    assert preset_config("course", "time", "flow") == recipe("time", "flow")
    with pytest.raises(UserFacingError, match="unknown preset"):
        preset_config("slow", "class")
