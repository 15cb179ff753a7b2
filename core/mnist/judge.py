"""The judge: a small CNN that reads MNIST digits, and the sample-quality figures built on it.

It is trained by the project's own command (`diffusion-stepper train mnist-judge`) and bundled
as `resources/models/mnist-judge.safetensors` with a sidecar holding its test accuracy. Two
figures come from it, for any batch of generated digits:

- **class accuracy**: the share of digits the judge reads as the class they were asked for;
- **Fréchet distance** (FD) between the judge's 128 penultimate features on the digits and on
  the MNIST test set, beside the FD of as many real training digits: the floor for that sample
  size (FD shrinks with more samples, so only equal counts compare).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from diffusion_stepper.core.atomic import atomic_path, write_bytes_atomically
from diffusion_stepper.core.devices import make_generator
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.paths import models_dir

JUDGE_NAME = "mnist-judge"
TARGET_ACCURACY = 0.99
FEATURES = 128


class DigitClassifier(nn.Module):
    """Two conv blocks and a 128-wide penultimate layer, whose activations are the features."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.features_layer = nn.Linear(64 * 7 * 7, FEATURES)
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.features_layer(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batched(model_fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    # 250 digits at a time: the first convolution's output is 25 MB (at 1,000 it was 100 MB, and
    # the judge's set-up held 250 MB for a moment beside whatever else the app was doing)
    with torch.no_grad():
        return torch.cat([model_fn(images[i : i + batch]) for i in range(0, images.shape[0], batch)])


def accuracy(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((batched(classifier, images).argmax(1) == labels).float().mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|μ_a − μ_b|² + tr(S_a + S_b − 2(S_a S_b)^½), the square root through symmetric eigensolves."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)  # the spectrum of S_a S_b
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


# --- training -------------------------------------------------------------------------------------


@dataclass
class JudgeTraining:
    epochs: int = 8  # at most; training stops once the test accuracy reaches the target (from epoch 3)
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    data_dir: str | None = None


def train_judge(settings: JudgeTraining, out: str | Path, report: Callable[[str], None] = print) -> tuple[Path, float]:
    """Train the judge on the MNIST training set; write NAME.safetensors and NAME.json in `out`.

    Returns the weights' path and the test accuracy; refuses to write a judge below the target."""

    images, labels = load_mnist("train", settings.data_dir).as_float()
    test_images, test_labels = load_mnist("test", settings.data_dir).as_float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # the layers' initial weights
        classifier = DigitClassifier()
    generator = make_generator(settings.seed, "cpu")
    optimizer = torch.optim.Adam(classifier.parameters(), lr=settings.lr)
    test_accuracy = 0.0
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        classifier.train()
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, images.shape[0], settings.batch_size):
            index = order[start : start + settings.batch_size]
            loss = F.cross_entropy(classifier(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        classifier.eval()
        test_accuracy = accuracy(classifier, test_images, test_labels)
        report(f"epoch {epoch}: test accuracy {test_accuracy:.2%}")
        if test_accuracy >= TARGET_ACCURACY and epoch >= 3:
            break
    if test_accuracy < TARGET_ACCURACY:
        raise UserFacingError(
            f"the judge reached {test_accuracy:.2%} test accuracy, below {TARGET_ACCURACY:.0%}: train more epochs"
        )
    folder = Path(out)
    weights = folder / f"{JUDGE_NAME}.safetensors"
    with atomic_path(weights) as temporary:
        save_file(classifier.state_dict(), str(temporary))
    sidecar = {
        "name": JUDGE_NAME,
        "architecture": "DigitClassifier (conv 32, conv 64, linear 128, linear 10)",
        "test_accuracy": test_accuracy,
        "epochs": epoch,
        "training": {"batch_size": settings.batch_size, "lr": settings.lr, "seed": settings.seed},
        "command": f"diffusion-stepper train mnist-judge --seed {settings.seed} --out {folder}",
    }
    write_bytes_atomically(folder / f"{JUDGE_NAME}.json", (json.dumps(sidecar, indent=2) + "\n").encode())
    return weights, test_accuracy


# --- loading and scoring --------------------------------------------------------------------------


def bundled_judge_path() -> Path:
    return models_dir() / f"{JUDGE_NAME}.safetensors"


def load_judge(path: str | Path | None = None) -> DigitClassifier:
    """The judge's weights (default: the bundled one), checked against its architecture."""

    path = Path(path) if path is not None else bundled_judge_path()
    if not os.path.isfile(path) and path == bundled_judge_path():
        raise UserFacingError(
            f"the judge is missing ({path}): train it with `diffusion-stepper train mnist-judge --out {path.parent}`"
        )
    check_input_file(path)
    classifier = DigitClassifier()
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserFacingError(f"{path}: not a judge's safetensors file ({str(exc).splitlines()[0][:80]})") from None
    expected = {name: tuple(value.shape) for name, value in classifier.state_dict().items()}
    found = {name: tuple(value.shape) for name, value in weights.items()}
    if found != expected:
        raise UserFacingError(f"{path}: these weights are not the judge's (DigitClassifier) layers")
    classifier.load_state_dict(weights)
    return classifier.eval()


@dataclass
class QualityFigures:
    accuracy: float | None  # None for digits without asked-for classes
    fd: float  # samples → test set
    fd_real: float  # as many real training digits → test set: the floor
    count: int

    @property
    def fd_ratio(self) -> float:
        return self.fd / self.fd_real if self.fd_real > 0 else math.inf


class Judge:
    """The judge with the test set's features and the real-digit floors, computed once."""

    def __init__(self, classifier: DigitClassifier | None = None, data_dir: str | None = None, seed: int = 0):
        self.classifier = classifier or load_judge()
        test_images, _ = load_mnist("test", data_dir).as_float()
        self.test_features = self.features(test_images)
        # the training digits as bytes (47 MB, not 188 MB as floats): a few become floats when drawn
        train = load_mnist("train", data_dir)
        self._train_images, self._train_labels = train.images, train.labels
        self._floors: dict[int, float] = {}
        self.seed = seed

    def features(self, images: torch.Tensor) -> np.ndarray:
        return batched(self.classifier.features, images.float().cpu()).numpy().astype(np.float64)

    def predictions(self, images: torch.Tensor) -> torch.Tensor:
        return batched(self.classifier, images.float().cpu()).argmax(1)

    def real_floor(self, count: int) -> float:
        """The FD of `count` real training digits (drawn with the judge's seed) to the test set."""
        if count not in self._floors:
            generator = torch.Generator().manual_seed(self.seed)
            index = torch.randperm(self._train_images.shape[0], generator=generator)[:count]
            self._floors[count] = frechet_distance(self.features(self._train_digits(index)), self.test_features)
        return self._floors[count]

    def real_digits(self, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`per_class` training digits of each class (drawn with the judge's seed), and their labels."""
        generator = torch.Generator().manual_seed(self.seed)
        picks = []
        for digit in range(10):
            members = (self._train_labels == digit).nonzero().flatten()
            picks.append(members[torch.randperm(members.shape[0], generator=generator)[:per_class]])
        index = torch.cat(picks)
        return self._train_digits(index), self._train_labels[index]

    def _train_digits(self, index: torch.Tensor) -> torch.Tensor:
        """Training digits as float [N, 1, 28, 28] in [0, 1], as `MnistSplit.as_float` makes them."""
        return self._train_images[index].unsqueeze(1).float().div_(255.0)

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> QualityFigures:
        """Class accuracy (when `labels` say which digit each image was asked to be) and FD."""
        if images.shape[0] < 2:
            raise UserFacingError("a Fréchet distance needs at least two digits")
        images = images.clamp(0, 1)
        hits = None if labels is None else float((self.predictions(images) == labels.cpu()).float().mean())
        count = int(images.shape[0])
        features = self.features(images)
        if not np.isfinite(features).all():
            raise UserFacingError("the judge cannot read these digits: their pixels hold NaN or infinite values")
        try:
            distance = frechet_distance(features, self.test_features)
        except np.linalg.LinAlgError as exc:
            raise UserFacingError(f"the judge cannot compare these digits ({str(exc).splitlines()[0]})") from None
        return QualityFigures(hits, distance, self.real_floor(count), count)


def judge_run(trajectory, judge: Judge | None = None, data_dir: str | None = None) -> QualityFigures:
    """The judge's figures for a run's final digits: the share read as the class asked for (for a
    class-conditioned run) and the FD beside as many real digits. Refuses runs that are not MNIST
    digits (1 × 28 × 28 in [0, 1]) in one line."""
    final = trajectory.final_sample
    if tuple(final.shape[1:]) != (1, 28, 28) or tuple(trajectory.value_range) != (0.0, 1.0):
        raise UserFacingError(
            f"the judge reads MNIST digits (1×28×28 in [0, 1]); this run's images are "
            f"{'×'.join(map(str, final.shape[1:]))} in {list(trajectory.value_range)}"
        )
    judge = judge or Judge(data_dir=data_dir)
    labels = trajectory.labels if trajectory.labels is not None and len(trajectory.labels) == final.shape[0] else None
    return judge.score(final, labels)


def describe_figures(figures: QualityFigures) -> str:
    """ "judge: 100 digits, 97.0% read as the digit asked for, FD 62.1 (100 real digits: 30.3, 2.05×)"."""
    right = f", {figures.accuracy:.1%} read as the digit asked for" if figures.accuracy is not None else ""
    few = (
        f"; fewer digits than the judge's {FEATURES} features, so only the ratio to real digits means much"
        if figures.count <= FEATURES
        else ""
    )
    return (
        f"judge: {figures.count} digits{right}, FD {figures.fd:.1f} "
        f"({figures.count} real digits: {figures.fd_real:.1f}, {figures.fd_ratio:.2f}×{few})"
    )
