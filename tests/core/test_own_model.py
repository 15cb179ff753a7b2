"""A user's own model through `import diffusion_stepper as ds`: `ds.sample` on models whose exact ε
or v is known (Gaussian data, so the samples' mean and spread must come out right), the recorder
of a student's own loop, and what both leave behind (the file, `inspect`, `export --html`, the
inline page)."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
import torch

import diffusion_stepper as ds
from diffusion_stepper.core import api, cli
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule
from diffusion_stepper.core.diffusion.step_check import check_step
from diffusion_stepper.core.diffusion.theory import schedule_curves
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory

SHAPE = (1, 8, 8)
NUM = 64  # 64 × 64 pixels, each an independent draw: the mean is known to ±0.003 at spread 0.2
SPREAD = 0.2
# A schedule that reaches pure noise (ᾱ_T ≈ 4e-5): the course's own (T = 300) stops at ᾱ_T ≈ 0.05,
# where a deterministic sampler started from N(0, I) lands off the data's mean by √ᾱ_T·μ·s.
LONG = ds.linear_schedule(1000, 1e-4, 0.02)
# Steps enough for each sampler's discretization error to stay under the tolerance on this narrow
# Gaussian (a deterministic sampler's spread comes out low at few steps: DDIM at 50 steps, −14%)
EPS_STEPS = {"ddpm": 1000, "ddim": 250, "dpm++2m": 100, "dpm++2m-sde": 100, "euler": 250, "heun": 100}
FLOW_STEPS = {"euler": 200, "heun": 40, "midpoint": 40}


class GaussianEps:
    """The exact ε̂ = E[ε | x_t] for data N(mean, SPREAD²) per pixel (mean per class when conditioned),
    called as the course's UNets are; it keeps what it was called with."""

    def __init__(self, schedule=LONG, means=(0.6,)):
        self.alpha_bars = schedule.alpha_bars.to(torch.float32)
        self.T = schedule.T
        self.means = torch.tensor(means)
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def __call__(self, x, t, c=None):
        self.calls.append((t.clone(), None if c is None else c.clone()))
        alpha_bar = self.alpha_bars[torch.round(t * self.T).long()].view(-1, 1, 1, 1)
        mean = self._mean(c, x.shape[0])
        variance = alpha_bar * SPREAD**2 + 1 - alpha_bar
        return (1 - alpha_bar).sqrt() * (x - alpha_bar.sqrt() * mean) / variance

    def _mean(self, c, n):
        if c is None or not c.any():  # unconditional (or CFG's null class): the first mean
            return self.means[0].expand(n).view(-1, 1, 1, 1)
        return (c @ self.means).view(-1, 1, 1, 1)


def gaussian_velocity(mean=0.6):
    """The exact v̂ = E[x₁ − x₀ | x_t] for x₀ ~ N(0, 1) noise and x₁ ~ N(mean, SPREAD²) data."""

    def velocity(x, t):
        t = t.view(-1, 1, 1, 1)
        variance = (1 - t) ** 2 + t**2 * SPREAD**2
        return mean + (t * SPREAD**2 - (1 - t)) / variance * (x - t * mean)

    return velocity


@pytest.mark.parametrize("sampler", list(EPS_SAMPLERS))
def test_every_ddpm_sampler_draws_the_gaussian_the_exact_model_describes(sampler):
    run = ds.sample(
        GaussianEps(), shape=SHAPE, num=NUM, sampler=sampler, steps=EPS_STEPS[sampler], schedule=LONG, progress=False
    )
    samples = run.samples
    assert samples.shape == (NUM, *SHAPE)
    assert abs(samples.mean().item() - 0.6) < 0.02
    assert abs(samples.std().item() / SPREAD - 1) < 0.05
    checks = [check_step(run.frames, index) for index in range(len(run) - 1)]
    assert all(check is not None and check.holds() for check in checks)  # each update as its frame records it


@pytest.mark.parametrize("sampler", list(FLOW_SAMPLERS))
def test_every_flow_sampler_draws_the_gaussian_the_exact_velocity_describes(sampler):
    run = ds.sample(gaussian_velocity(), objective="flow", shape=SHAPE, num=NUM, sampler=sampler,
                    steps=FLOW_STEPS[sampler], progress=False)  # fmt: skip
    assert abs(run.samples.mean().item() - 0.6) < 0.02
    assert abs(run.samples.std().item() / SPREAD - 1) < 0.05
    assert run.frames[0].v_hat is not None and run.meta.family == "flow"


def test_the_model_sees_t_over_big_t_as_the_course_feeds_it_and_flow_time_rising():
    model = GaussianEps(ds.linear_schedule())
    ds.sample(model, shape=SHAPE, num=3, steps=300, progress=False)
    times = [t for t, _ in model.calls]
    assert all(t.dtype == torch.float32 and t.shape == (3,) for t in times)
    assert [round(float(t[0]) * 300) for t in times] == list(range(300, 0, -1))
    seen = []
    ds.sample(lambda x, t: seen.append(t) or torch.zeros_like(x), objective="flow", shape=SHAPE, num=2, steps=4,
              progress=False)  # fmt: skip
    assert [float(t[0]) for t in seen] == [0.0, 0.25, 0.5, 0.75]


def test_classes_are_guided_with_one_hot_c_and_zero_rows_for_the_unconditional_pass():
    model = GaussianEps(means=(0.2, 0.5, 0.8))
    run = ds.sample(model, shape=SHAPE, classes=range(3), per_class=2, num_classes=3, guidance=1.0, sampler="ddim",
                    steps=50, schedule=LONG, progress=False)  # fmt: skip
    _, c = model.calls[0]
    assert c.shape == (12, 3)  # both passes of 6 samples in one batch
    assert torch.equal(c[:6], torch.eye(3).repeat(2, 1)) and not c[6:].any()
    per_sample = run.samples.mean(dim=(1, 2, 3))
    assert torch.allclose(per_sample, torch.tensor([0.2, 0.5, 0.8]).repeat(2), atol=0.08)
    assert run.trajectory.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert run.meta.guidance == 1.0 and run.meta.classes == (0, 1, 2) and run.meta.algorithm == "ddpm+cfg"
    guided = ds.sample(model, shape=SHAPE, classes=[2], num_classes=3, guidance=5, steps=20, sampler="ddim",
                       schedule=LONG, progress=False)  # fmt: skip
    assert "eps_cond" in guided.frames[0].extras and guided.frames[0].coeffs["guidance"] == 5


def test_every_name_the_package_offers_is_the_apis():
    """api/__init__.py lists the names again (it loads core.api only on first use): the lists agree."""
    assert ds.__all__ == api.__all__
    assert all(getattr(ds, name) is getattr(api, name) for name in ds.__all__)


def test_the_same_seed_gives_the_same_frames_and_another_seed_others():
    def draw(seed):
        return ds.sample(GaussianEps(), shape=SHAPE, num=4, steps=20, seed=seed, progress=False).trajectory.stack("x_t")

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"objective": "score"}, "objective must be one of ddpm, flow"),
        ({"shape": (28, 28)}, "shape must be (channels, height, width)"),
        ({"sampler": "midpoint"}, "'midpoint' sampler does not suit a DDPM"),
        ({"objective": "flow", "sampler": "ddim"}, "'ddim' sampler does not suit a flow-matching"),
        ({"steps": 301}, "at most T = 300"),
        ({"steps": 0}, "steps must be between 1 and"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"shape": 28}, "shape must be (channels, height, width)"),
        ({"shape": (4, 8, 8)}, "grey (1 channel) or RGB (3), got 4 channels"),
        ({"shape": (8, 8, 3)}, "channels come first"),
        ({"num": 2.0}, "num must be a whole number"),
        ({"num": "2"}, "num must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": -1}, "seed must be between"),
        ({"classes": 3}, "classes must be whole numbers"),
        ({"guidance": 3}, "guidance= is for a class-conditioned model"),
        ({"per_class": 2}, "per_class= is for a class-conditioned model"),
        ({"classes": [1], "per_class": 2.0}, "per_class must be a whole number"),
        ({"value_range": (0, float("inf"))}, "finite"),
        ({"schedule": DiscreteSchedule(torch.tensor([1.0, 0.5, 1.5], dtype=torch.float64))}, "must fall from 1"),
        ({"num": 0}, "num must be between"),
        ({"classes": [10]}, "classes must be in 0..9"),
        ({"classes": [1], "num": 4}, "num= is for unconditional models"),
        ({"classes": [1], "guidance": -1}, "guidance"),
        ({"eta": 0.5}, "eta"),
        ({"schedule": [0.9, 0.95]}, "ᾱ_t must fall from 1 towards 0"),
        ({"objective": "flow", "schedule": LONG}, "a flow model has none"),
        ({"value_range": (1, 0)}, "low < high"),
        ({"num": 5000, "shape": (3, 256, 256), "steps": 300}, "memory"),
    ],
)
def test_bad_arguments_are_one_clear_error_before_the_model_runs(arguments, said):
    model = GaussianEps(ds.linear_schedule())
    with pytest.raises(UserFacingError) as error:
        ds.sample(model, **{"shape": SHAPE, "progress": False, **arguments})
    assert said in str(error.value) and "\n" not in str(error.value)
    assert model.calls == []


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (
            lambda x, t: torch.zeros(x.shape[0], 2, *x.shape[2:]),
            "returned shape (4, 2, 8, 8) for x_t of shape (4, 1, 8, 8)",
        ),
        (lambda x, t: torch.full_like(x, float("nan")), "NaN or infinite values at t = 300 (call 1)"),
        (lambda x, t: x.numpy(), "returned ndarray"),
    ],
)
def test_a_model_that_returns_the_wrong_thing_is_one_error_at_the_first_step(model, said):
    with pytest.raises(ds.ModelOutputError, match=re.escape(said)):
        ds.sample(model, shape=SHAPE, num=4, progress=False)


@pytest.mark.parametrize(
    ("arguments", "said"),
    [((300, 1e-4, 1.5), "beta_start <= beta_end < 1"), ((0,), "T must be between"), ((300.5,), "T must be a whole")],
)
def test_a_bad_linear_schedule_is_one_clear_error(arguments, said):
    with pytest.raises(ds.UserFacingError, match=re.escape(said)):
        ds.linear_schedule(*arguments)


def test_a_schedule_object_without_its_clean_end_gets_one():
    run = ds.sample(GaussianEps(), shape=SHAPE, num=2, steps=3, schedule=DiscreteSchedule(LONG.alpha_bars[1:]),
                    progress=False)  # fmt: skip
    assert run.frames[0].t == 1000 and run.meta.alpha_bars[0] == 1.0 and len(run.meta.alpha_bars) == 1001


def test_numpy_and_tensor_numbers_are_taken_and_the_run_saves_and_shows(tmp_path):
    model = GaussianEps(ds.linear_schedule(), means=(0.3, 0.7))
    run = ds.sample(model, shape=np.array([1, 8, 8]), classes=np.arange(2), per_class=np.int64(2), num_classes=2,
                    guidance=np.float32(3), seed=np.int64(3), steps=torch.tensor(10), sampler="ddim",
                    eta=np.float32(0.5), value_range=[0, 1], progress=False)  # fmt: skip
    assert run.meta.seed == 3 and run.meta.guidance == 3.0 and run.meta.eta == 0.5 and run.meta.steps == 10
    assert ds.load(run.save(tmp_path / "numpy.npz")).meta.classes == (0, 1)
    assert "<script>" in run.html() and run.html() is run.html()  # made once, shown many times


def test_a_model_that_raises_says_how_it_was_called():
    def needs_a_class(x, t, c):
        return torch.zeros_like(x)

    with pytest.raises(ds.ModelCallError) as error:
        ds.sample(needs_a_class, shape=SHAPE, num=2, progress=False)
    assert "TypeError" in str(error.value) and "model(x_t (2, 1, 8, 8), t (2,))" in str(error.value)
    assert "at t = 300" in str(error.value) and isinstance(error.value.__cause__, TypeError)


def test_a_model_in_double_precision_gets_its_inputs_in_double():
    net = torch.nn.Conv2d(1, 1, 1).double()
    seen = []

    def model(x, t):
        seen.append((x.dtype, t.dtype))
        return net(x)

    model.parameters = net.parameters  # a callable with weights, as a wrapped module has
    run = ds.sample(model, shape=SHAPE, num=2, steps=3, progress=False)
    assert set(seen) == {(torch.float64, torch.float64)} and run.samples.dtype == torch.float32


def test_a_model_in_training_mode_samples_in_eval_mode_and_is_put_back():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = torch.nn.Dropout(0.5)
            self.modes = []

        def forward(self, x, t):
            self.modes.append(self.training)
            return self.dropout(torch.zeros_like(x))

    net = Net().train()
    ds.sample(net, shape=SHAPE, num=2, steps=5, progress=False)
    assert set(net.modes) == {False} and net.training


def test_a_run_saves_the_file_inspect_and_export_open(tmp_path, capsys):
    schedule = LONG.alpha_bars[1:]  # a schedule of the user's own, as a tensor of ᾱ_1..ᾱ_T
    run = ds.sample(GaussianEps(), shape=(3, 16, 16), num=2, sampler="ddim", steps=10, schedule=schedule,
                    value_range=(-1, 1), name="my unet", progress=False)  # fmt: skip
    path = run.save(tmp_path / "mine.npz")
    loaded = load_trajectory(path)
    assert torch.equal(loaded.stack("x_t"), run.trajectory.stack("x_t"))
    assert loaded.run_meta.model == "my unet" and loaded.value_range == (-1.0, 1.0)
    curves = schedule_curves(loaded.run_meta)  # the schedule plot reads the user's own ᾱ
    assert np.allclose(curves.curves[0].y, LONG.alpha_bars.numpy())
    assert cli.main(["inspect", str(path), "--step", "0,10"]) == 0
    assert "my unet" in capsys.readouterr().out
    page = tmp_path / "mine.html"
    assert cli.main(["export", str(path), "--html", str(page)]) == 0
    assert "my unet" in page.read_text()
    assert ds.load(path).samples.shape == (2, 3, 16, 16)


def test_the_inline_page_is_the_interactive_page_in_an_iframe_of_its_own():
    run = ds.sample(GaussianEps(), shape=SHAPE, num=2, steps=300, name="inline <b>", progress=False)
    inline = run._repr_html_()
    assert inline.startswith("<iframe srcdoc=") and inline.endswith("</iframe>")
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', inline)[1])
    assert page == run.html() and "<script>" in page and "inline &lt;b&gt;" in page
    assert page.count("data:image/png;base64") > 100  # pictures of the frames a page keeps (every 3rd of 301)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing fetched


# --- the recorder: a student's own loop ------------------------------------------------------------


def course_ddpm_loop(model, schedule, recorder, shape=(4, 1, 8, 8), seed=0):
    """Part B's Algorithm 2 as a student writes it, recorded step by step."""
    generator = torch.Generator().manual_seed(seed)
    alpha_bars = schedule.alpha_bars.to(torch.float32)
    x = torch.randn(shape, generator=generator)
    for t in range(schedule.T, 0, -1):
        eps = model(x, torch.full((shape[0],), t / schedule.T))
        alpha_bar, alpha_bar_prev = alpha_bars[t], alpha_bars[t - 1]
        x0 = (x - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
        beta = 1 - alpha_bar / alpha_bar_prev
        z = torch.randn(shape, generator=generator) if t > 1 else torch.zeros(shape)
        mean = (
            alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + (1 - beta).sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x
        )
        recorder.add(t=t, x_t=x, x0_hat=x0, noise_hat=eps, noise_z=z, beta_t=float(beta))
        x = mean + beta.sqrt() * z
    recorder.add(t=0, x_t=x)
    return x


def test_a_recorded_loop_is_a_run_the_file_inspect_export_and_the_page_open(tmp_path, capsys):
    schedule = ds.linear_schedule(50)
    recorder = ds.Recorder(objective="ddpm", value_range=(0, 1), name="my DDPM", schedule=schedule, seed=0)
    final = course_ddpm_loop(GaussianEps(schedule), schedule, recorder)
    run = recorder.run
    assert len(run) == 51 and torch.equal(run.samples, final)
    assert run.frames[0].coeffs["alpha_bar_t"] == pytest.approx(float(schedule.alpha_bars[50]))
    assert run.frames[3].extras["noise_z"].shape == (4, 1, 8, 8) and run.frames[3].coeffs["beta_t"] > 0
    path = recorder.save(tmp_path / "recorded.npz")
    loaded = load_trajectory(path)
    assert loaded.run_meta.source == "recorded from your own loop" and loaded.run_meta.steps == 50
    assert torch.equal(loaded.stack("eps_hat"), run.trajectory.stack("eps_hat"))
    assert cli.main(["inspect", str(path)]) == 0 and "my DDPM" in capsys.readouterr().out
    assert cli.main(["export", str(path), "--html", str(tmp_path / "r.html")]) == 0
    assert recorder._repr_html_().startswith("<iframe")


def test_the_recorder_takes_arrays_and_single_images_and_flow_time():
    recorder = ds.Recorder(objective="flow", name="numpy loop")
    picture = np.zeros((28, 28), dtype=np.float64)
    for step in range(4):
        recorder.add(t=np.float32(step / 4), x_t=picture, x0_hat=picture, noise_hat=picture)
    recorder.add(t=torch.tensor(1.0), x_t=picture)
    run = recorder.run
    assert run.frames[0].x_t.shape == (1, 1, 28, 28) and run.frames[0].v_hat is not None
    assert [frame.t for frame in run.frames] == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        (
            [{"t": 3, "x_t": torch.zeros(2, 1, 8, 8), "x0_hat": torch.zeros(2, 1, 8, 8)}],
            "give both x0_hat and noise_hat",
        ),
        ([{"t": 3, "x_t": torch.zeros(2, 1, 8, 8)}, {"t": 2, "x_t": torch.zeros(2, 1, 8, 8)}], "already ended"),
        ([{"t": 3, "x_t": torch.zeros(2, 1, 8, 8)}, {"t": 2, "x_t": torch.zeros(3, 1, 8, 8)}], "already ended"),
        (
            [
                {
                    "t": 3,
                    "x_t": torch.zeros(2, 1, 8, 8),
                    "x0_hat": torch.zeros(2, 1, 8, 8),
                    "noise_hat": torch.zeros(2, 1, 4, 4),
                }
            ],
            "noise_hat at frame 0 has shape (2, 1, 4, 4)",
        ),  # fmt: skip
        ([{"t": 3, "x_t": torch.full((2, 1, 8, 8), float("nan"))}], "x_t at frame 0 holds NaN"),
        ([{"t": 2.5, "x_t": torch.zeros(2, 1, 8, 8)}], "integer timestep"),
        ([{"t": 3, "x_t": "picture"}], "must be a tensor or an array"),
        ([{"t": 3, "x_t": torch.zeros(2, 2, 1, 8, 8)}], "must be (N, C, H, W)"),
        ([{"t": 3, "x_t": torch.zeros(8, 8), "gap": float("inf")}], "numbers must be finite"),
    ],
)
def test_the_recorder_refuses_a_bad_frame_in_one_line_and_keeps_the_good_ones(steps, said):
    recorder = ds.Recorder()
    with pytest.raises(ds.RecorderError) as error:
        for step in steps:
            recorder.add(**step)
    assert said in str(error.value) and "\n" not in str(error.value)
    assert len(recorder.frames) == len(steps) - 1


def test_a_refused_frame_leaves_the_recorder_as_it_was():
    recorder = ds.Recorder()
    with pytest.raises(ds.RecorderError):
        recorder.add(t=5, x_t=torch.zeros(3, 1, 8, 8), x0_hat=torch.full((3, 1, 8, 8), float("nan")),
                     noise_hat=torch.zeros(3, 1, 8, 8))  # fmt: skip
    with pytest.raises(ds.RecorderError, match="numbers must be finite"):
        recorder.add(t=0, x_t=torch.zeros(2, 1, 8, 8), gap=float("nan"))
    recorder.add(t=5, x_t=torch.zeros(2, 1, 8, 8), x0_hat=torch.zeros(2, 1, 8, 8), noise_hat=torch.zeros(2, 1, 8, 8))
    recorder.add(t=0, x_t=torch.ones(2, 1, 8, 8))  # a batch of 2 now: the refused 3 set nothing
    assert len(recorder.run) == 2 and recorder.run.samples.shape == (2, 1, 8, 8)


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"x_t": torch.zeros(2, 8, 8, 3)}, "channels come first"),
        ({"x_t": torch.zeros(2, 1, 8, 8), "final": 1.0}, "'final' at frame 0 is a name the app gives"),
        ({"x_t": torch.zeros(2, 1, 8, 8), "x0": torch.zeros(2, 1, 8, 8)}, "'x0' at frame 0 is a name"),
    ],
)
def test_the_recorder_refuses_pictures_the_app_cannot_show_and_names_it_keeps(arguments, said):
    with pytest.raises(ds.RecorderError, match=re.escape(said)):
        ds.Recorder().add(t=3, **arguments)


def test_the_recorder_takes_whole_labels_only():
    with pytest.raises(ds.RecorderError, match="labels must be whole numbers"):
        ds.Recorder(labels=[1.5, 2])
    assert ds.Recorder(labels=np.array([1, 2])).labels.tolist() == [1, 2]


def test_the_recorder_says_what_to_do_when_nothing_was_recorded():
    with pytest.raises(ds.RecorderError, match="nothing recorded yet"):
        ds.Recorder().save("never.npz")
