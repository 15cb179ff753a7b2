"""MNIST from the four standard IDX files (gzipped or raw), and an optional checked download.

The app ships MNIST (resources/data/mnist), so training and the part B experiments work offline
from the first launch; a folder the user names, or a downloaded copy, takes precedence.

The data is returned as whole tensors, never as per-item PIL images: training moves the full
training set to the device once and indexes batches out of it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusion_stepper.core import paths
from diffusion_stepper.core.atomic import write_bytes_atomically
from diffusion_stepper.core.errors import DataError
from diffusion_stepper.core.files import check_output_folder

DATA_ENV_VAR = "DIFFUSION_STEPPER_DATA"

FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
# sha256 of the uncompressed files, as published with the original MNIST.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_IDX_DTYPES = {0x08: np.uint8}


@dataclass
class MnistSplit:
    images: torch.Tensor  # uint8 [N, 28, 28]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return self.images.shape[0]

    def as_float(
        self, device: torch.device | str = "cpu", limit: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float [N, 1, 28, 28] in [0, 1] and labels, both on `device`."""
        images, labels = self.images, self.labels
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        images = images.to(device=device).unsqueeze(1).float().div_(255.0)
        return images, labels.to(device=device)


@dataclass(frozen=True)
class MnistSource:
    """Where MNIST is read from, and why there: what the Train tab and `train` report."""

    folder: Path
    origin: str  # "bundled with the app", "downloaded copy", "$DIFFUSION_STEPPER_DATA" or "chosen folder"

    @property
    def bundled(self) -> bool:
        return self.origin == BUNDLED

    def describe(self) -> str:
        return f"MNIST {self.origin}" if self.bundled else f"MNIST in {self.folder} ({self.origin})"


BUNDLED = "bundled with the app"


def mnist_source(data_dir: str | os.PathLike | None = None, split: str = "train") -> MnistSource:
    """--data-dir if given, else $DIFFUSION_STEPPER_DATA, else a complete downloaded copy in
    ~/.cache/diffusion-stepper/mnist, else the copy bundled with the app."""
    if data_dir:
        return MnistSource(Path(data_dir).expanduser(), "chosen folder")
    if os.environ.get(DATA_ENV_VAR):
        return MnistSource(Path(os.environ[DATA_ENV_VAR]).expanduser(), f"${DATA_ENV_VAR}")
    cache = paths.mnist_cache_folder()
    if all(_find(cache, FILES[(split, kind)]) for kind in ("images", "labels")):
        return MnistSource(cache, "downloaded copy")
    return MnistSource(paths.bundled_mnist_folder(), BUNDLED)


def download_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """Where `download mnist` puts the files: --data-dir, else $DIFFUSION_STEPPER_DATA, else the cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser()
    return paths.mnist_cache_folder()


def _find(data_dir: Path, stem: str) -> Path | None:
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped if it ends in .gz) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as an IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = int(np.prod(shape)) if ndim else 0
    if len(raw) - header_size != expected:
        raise DataError(
            f"{path}: IDX header says {expected} values for shape {shape}, file has {len(raw) - header_size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None) -> MnistSplit:
    """Load the "train" or "test" split; one clear error if any file is missing."""
    source = mnist_source(data_dir, split)
    directory = source.folder
    stems = [FILES[(split, "images")], FILES[(split, "labels")]]
    found = {stem: _find(directory, stem) for stem in stems}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"MNIST files missing in {directory} ({source.origin}): expected "
            f"{', '.join(s + '[.gz]' for s in missing)}; choose the folder that holds them, or leave the "
            "data folder unset to use the copy bundled with the app"
        )
    images = read_idx(found[stems[0]])
    labels = read_idx(found[stems[1]])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"MNIST {split} files in {directory} disagree: images {images.shape}, labels {labels.shape}")
    return MnistSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


def download_mnist(
    data_dir: str | os.PathLike | None = None,
    mirrors: tuple[str, ...] = MIRRORS,
    report: Callable[[str], None] = lambda message: None,
) -> Path:
    """Fetch any missing IDX file from the mirrors, keeping it only if its sha256 matches."""

    directory = check_output_folder(download_folder(data_dir), "--data-dir")  # a file, a place we may not write
    for stem, digest in SHA256.items():
        if _find(directory, stem) is not None:
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror}{stem}.gz"
            report(f"downloading {url}")
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    compressed = response.read()
                actual = hashlib.sha256(gzip.decompress(compressed)).hexdigest()
            except (OSError, EOFError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            if actual != digest:
                errors.append(f"{url}: checksum mismatch")
                continue
            write_bytes_atomically(directory / f"{stem}.gz", compressed)
            break
        else:
            raise DataError(f"could not download {stem}: " + "; ".join(errors))
    return directory
