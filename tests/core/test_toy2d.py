"""The 2D lab's core: its datasets, the exact field of Gaussian mixtures and the energy distance."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_stepper.core.diffusion.objectives import FlowObjective
from diffusion_stepper.core.errors import TrainingDiverged, UserFacingError
from diffusion_stepper.core.toy2d import training as toy2d_training
from diffusion_stepper.core.toy2d.datasets import DATASETS, EIGHT_GAUSSIANS
from diffusion_stepper.core.toy2d.metrics import energy_distance
from diffusion_stepper.core.toy2d.mixture import GaussianMixture
from diffusion_stepper.core.toy2d.sampling import ExactMixturePredictor, as_points, sample_model, sample_points
from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, make_objective, train_toy2d


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(DATASETS))
def test_each_dataset_draws_the_same_points_from_the_same_seed(name):
    dataset = DATASETS[name]
    points, labels = dataset.sample(2000, generator(3))
    again, labels_again = dataset.sample(2000, generator(3))
    other, _ = dataset.sample(2000, generator(4))
    assert points.shape == (2000, 2) and points.dtype == torch.float32
    assert torch.equal(points, again) and not torch.equal(points, other)
    assert float(points.abs().max()) < 4.0 and float(points.std()) > 0.5  # on the scale noise N(0, I) covers
    if dataset.num_classes:
        assert torch.equal(labels, labels_again)
        assert sorted(labels.unique().tolist()) == list(range(dataset.num_classes))
    else:
        assert labels is None


def test_the_moons_and_circles_classes_are_their_shapes():
    points, labels = DATASETS["circles"].sample(4000, generator())
    radius = points.norm(dim=1)
    assert float(radius[labels == 0].mean()) == pytest.approx(1.0, abs=0.05)
    assert float(radius[labels == 1].mean()) == pytest.approx(2.0, abs=0.05)
    points, labels = DATASETS["moons"].sample(4000, generator())
    assert float(points[labels == 0, 1].mean()) > float(points[labels == 1, 1].mean())  # the upper moon


def test_the_checkerboard_fills_only_the_dark_squares():
    points, _ = DATASETS["checkerboard"].sample(5000, generator())
    cells = torch.floor(points.double() + 2.0)
    assert bool((cells >= 0).all() and (cells <= 3).all())
    parity = torch.remainder(cells[:, 0] + cells[:, 1], 2)
    assert bool((parity == 0).all())  # one colour of the board only
    assert len({(int(a), int(b)) for a, b in cells.tolist()}) == 8  # and all eight of its squares


MIXTURE = GaussianMixture(
    torch.tensor([[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]], dtype=torch.float64),
    torch.tensor([0.3, 0.6, 0.2], dtype=torch.float64),
    torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
    torch.tensor([0, 1, 1]),
)
LEVELS = [(1.0, 0.0), (0.8, 0.6), (0.3, 0.95), (0.5, 0.5)]  # (a, b): data, DDPM-like, nearly noise, flow's t = 0.5


@pytest.mark.parametrize("a, b", LEVELS)
def test_the_exact_score_is_the_gradient_of_the_log_density(a, b):
    """The closed-form score against central differences of log p, on the noised marginal."""
    x = torch.randn((64, 2), generator=generator(1), dtype=torch.float64) * 1.5
    step = 1e-5
    numeric = torch.stack(
        [
            (MIXTURE.log_density(x + step * e, a, b) - MIXTURE.log_density(x - step * e, a, b)) / (2 * step)
            for e in torch.eye(2, dtype=torch.float64)
        ],
        dim=1,
    )
    assert torch.allclose(MIXTURE.score(x, a, b), numeric, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("a, b", LEVELS[1:])
def test_posterior_means_agree_with_tweedie_and_add_up_to_x(a, b):
    """E[z | x] = −b·∇log p(x) (Tweedie), and x = a·E[x₁ | x] + b·E[z | x] exactly."""
    x = torch.randn((64, 2), generator=generator(2), dtype=torch.float64) * 1.5
    clean, noise = MIXTURE.posterior_means(x, a, b)
    assert torch.allclose(noise, -b * MIXTURE.score(x, a, b), atol=1e-10)
    assert torch.allclose(a * clean + b * noise, x, atol=1e-10)


def test_one_gaussian_has_the_textbook_posterior():
    """x₁ ~ N(μ, s²), x = a·x₁ + b·z: E[x₁ | x] = μ + a·s²/(a²s² + b²)·(x − a·μ)."""
    single = GaussianMixture(
        torch.tensor([[0.7, -1.2]], dtype=torch.float64),
        torch.tensor([0.4], dtype=torch.float64),
        torch.ones(1, dtype=torch.float64),
    )
    a, b = 0.6, 0.8
    x = torch.randn((16, 2), generator=generator(5), dtype=torch.float64)
    mean = single.means[0]
    expected = mean + a * 0.16 / (a * a * 0.16 + b * b) * (x - a * mean)
    clean, _ = single.posterior_means(x, a, b)
    assert torch.allclose(clean, expected, atol=1e-12)


def test_the_exact_fields_are_finite_at_both_ends_of_the_path():
    x = torch.randn((32, 2), generator=generator(6), dtype=torch.float64)
    for t in (0.0, 1.0):
        assert bool(torch.isfinite(EIGHT_GAUSSIANS.flow_velocity(x, t)).all())
    assert torch.allclose(EIGHT_GAUSSIANS.flow_velocity(x, 0.0), -x, atol=1e-12)  # E[x₁] = 0 by symmetry, E[z] = x
    eps, x0 = EIGHT_GAUSSIANS.ddpm_estimates(x, 1.0 - 1e-12)
    assert torch.allclose(x0, x, atol=1e-5)  # at ᾱ = 1 the point is its own clean estimate


def test_the_exact_velocity_carries_noise_to_the_mixture():
    """Euler on dx/dt = v*(x, t) from N(0, I): the perfect model lands on the 8 Gaussians, as close
    as a fresh sample of them is."""
    points = torch.randn((2000, 2), generator=generator(7), dtype=torch.float64)
    steps = 200
    for index in range(steps):
        points = points + EIGHT_GAUSSIANS.flow_velocity(points, index / steps) / steps
    data, _ = EIGHT_GAUSSIANS.sample(2000, generator(8))
    fresh, _ = EIGHT_GAUSSIANS.sample(2000, generator(9))
    floor = energy_distance(data, fresh)
    assert energy_distance(points, data) < 3 * floor + 1e-3
    radius = points.norm(dim=1)
    assert float(radius.mean()) == pytest.approx(2.0, abs=0.05)


def test_a_class_of_the_mixture_is_its_components():
    given = MIXTURE.given_class(1)
    assert given.means.shape == (2, 2) and float(given.weights.sum()) == pytest.approx(1.0)
    assert given.weights.tolist() == pytest.approx([0.6, 0.4])
    with pytest.raises(ValueError):
        MIXTURE.given_class(5)


def test_energy_distance_is_zero_for_one_cloud_and_grows_with_a_shift():
    cloud = torch.randn((500, 2), generator=generator(10))
    assert energy_distance(cloud, cloud) == pytest.approx(0.0, abs=1e-9)
    near, far = (energy_distance(cloud, cloud + torch.tensor([shift, 0.0])) for shift in (0.2, 1.0))
    assert 0 < near < far
    # for two point masses 1 apart the distance is 2·1 − 0 − 0
    assert energy_distance(torch.zeros(3, 2), torch.ones(3, 2) * torch.tensor([1.0, 0.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        energy_distance(torch.zeros(3, 2), torch.zeros(3, 3))


def test_a_bad_mixture_is_refused():
    with pytest.raises(ValueError):
        GaussianMixture(torch.zeros(2, 2), torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError):
        GaussianMixture(torch.zeros(2, 2), torch.ones(2), torch.tensor([0.5, 0.4]))
    assert math.isclose(float(EIGHT_GAUSSIANS.weights.sum()), 1.0)


# --- the 2D models: trained with the shared objectives, sampled by the shared loop ----------------


def trained(**settings) -> Toy2DTrained:
    config = Toy2DConfig(**{"iterations": 400, "log_every": 100, **settings})
    events = list(train_toy2d(config))
    assert [event.iteration for event in events[:-1]] == list(range(100, config.iterations + 1, 100))
    return events[-1]


@pytest.mark.slow  # trains 2D models
@pytest.mark.parametrize("objective", ["flow", "ddpm"])
def test_a_2d_model_learns_its_dataset(objective):
    """400 iterations already pull the particles from noise towards the moons; the same seed
    trains the same weights."""
    result = trained(objective=objective)
    again = trained(objective=objective)
    assert all(torch.equal(p, q) for p, q in zip(result.model.parameters(), again.model.parameters()))
    frames = list(sample_model(result.model, result.objective, 1500, generator(1), steps=40))
    assert len(frames) == 41 and frames[-1].x_t.shape == (1500, 2, 1, 1)
    assert frames[0].noise_field == ("v_hat" if objective == "flow" else "eps_hat")
    data, _ = DATASETS["moons"].sample(1500, generator(2))
    assert energy_distance(as_points(frames[-1].x_t), data) < 0.4 * energy_distance(as_points(frames[0].x_t), data)


@pytest.mark.slow  # trains 2D models
def test_guidance_pushes_particles_to_their_class():
    """A class-conditioned model on the circles: with CFG the particles asked to be the inner
    circle land nearer radius 1 than those asked to be the outer one."""
    result = trained(dataset="circles", classes=True, iterations=800)
    labels = torch.arange(2).repeat(400)
    frames = list(sample_model(result.model, result.objective, 800, generator(3), labels=labels, guidance=3.0))
    radius = as_points(frames[-1].x_t).norm(dim=1)
    assert float(radius[labels == 0].mean()) + 0.5 < float(radius[labels == 1].mean())
    assert frames[1].extras["v_gap"].shape == (800, 2, 1, 1)  # CFG's parts travel with the frame, as for digits


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"dataset": "spiral"}, "unknown dataset 'spiral'"),
        ({"objective": "score"}, "objective must be one of ddpm, flow"),
        ({"dataset": "swiss-roll", "classes": True}, "has no classes"),
        ({"iterations": 0}, "iterations must be"),
        ({"lr": float("nan")}, "lr must be"),
    ],
)
def test_bad_2d_training_settings_are_one_line(settings, fragment):
    with pytest.raises(UserFacingError, match=fragment):
        next(train_toy2d(Toy2DConfig(**settings)))


def test_a_2d_loss_that_is_not_finite_stops_the_training_where_it_happened(monkeypatch):
    """The loss window MNIST's training reads (core.training.loop) checks every loss: a 2D run
    that diverges stops with one line, instead of training on and saving weights of NaN."""
    original, calls = FlowObjective.training_loss, []

    def poisoned(self, *args):
        calls.append(1)
        loss = original(self, *args)
        return loss * float("nan") if len(calls) == 7 else loss

    monkeypatch.setattr(FlowObjective, "training_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at iteration 7; lower --lr"):
        list(train_toy2d(Toy2DConfig(iterations=20, log_every=5)))


def test_the_2d_rate_falls_on_torchs_cosine_to_zero(monkeypatch):
    """The rate each iteration trains at: the shared cosine, as torch's CosineAnnealingLR gives it."""
    rates = []
    monkeypatch.setattr(toy2d_training, "set_rate", lambda optimizer, rate: rates.append(rate))
    config = Toy2DConfig(iterations=60, log_every=60, hidden=8, batch_size=16)
    list(train_toy2d(config))
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.iterations)
    expected = []
    for _ in range(config.iterations):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx(expected, rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("objective, sampler, steps", [("flow", "midpoint", 20), ("ddpm", "dpm++2m", 25)])
def test_the_exact_field_is_a_perfect_model_for_the_shared_samplers(objective, sampler, steps):
    """The 8 Gaussians' closed-form ε̂ or v̂, walked by the same step rules as a trained model,
    lands on the mixture about as close as fresh data is: what is left is the sampler's error."""
    exact = make_objective(objective)
    predict = ExactMixturePredictor(EIGHT_GAUSSIANS, exact)
    final = list(sample_points(predict, exact, 2000, generator(11), sampler=sampler, steps=steps))[-1].x_t.reshape(
        -1, 2
    )
    data, _ = EIGHT_GAUSSIANS.sample(2000, generator(12))
    fresh, _ = EIGHT_GAUSSIANS.sample(2000, generator(13))
    assert energy_distance(final, data) < 3 * energy_distance(fresh, data) + 2e-3
    # guided by class: every particle asked for Gaussian k lands at Gaussian k
    labels = torch.arange(8).repeat(50)
    guided = list(
        sample_points(predict, exact, 400, generator(14), num_classes=8, labels=labels, sampler=sampler, steps=steps)
    )[-1].x_t.reshape(-1, 2)
    nearest = torch.cdist(guided.double(), EIGHT_GAUSSIANS.means).argmin(dim=1)
    assert bool((nearest == labels).all())
