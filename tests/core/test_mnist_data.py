import gzip
import hashlib
import shutil

import pytest
import torch

from diffusion_stepper.core.errors import DataError
from diffusion_stepper.core.mnist.data import (
    DATA_ENV_VAR,
    FILES,
    SHA256,
    download_folder,
    download_mnist,
    load_mnist,
    mnist_source,
    read_idx,
)
from diffusion_stepper.core.paths import bundled_mnist_folder

TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_test_split(mnist_dir):
    split = load_mnist("test", mnist_dir)
    assert split.images.shape == (10000, 28, 28) and split.images.dtype == torch.uint8
    assert torch.bincount(split.labels).tolist() == TEST_LABEL_COUNTS
    images, labels = split.as_float(limit=5)
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert labels.shape == (5,)


def test_raw_idx_files_read_like_gzipped_ones(tmp_path, mnist_dir):
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    raw = load_mnist("test", tmp_path)
    gzipped = load_mnist("test", mnist_dir)
    assert torch.equal(raw.images, gzipped.images) and torch.equal(raw.labels, gzipped.labels)


def test_missing_files_name_the_directory_and_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist("train", tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "\n" not in message


def test_corrupt_idx_file(tmp_path):
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    with pytest.raises(DataError, match="IDX header says 7840 values"):
        read_idx(bad)
    (tmp_path / "junk.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot be read"):
        read_idx(tmp_path / "junk.gz")


def test_the_bundled_copy_is_the_published_mnist():
    for stem, digest in SHA256.items():
        assert (
            hashlib.sha256(gzip.decompress((bundled_mnist_folder() / f"{stem}.gz").read_bytes())).hexdigest() == digest
        )


def test_with_nothing_set_up_mnist_is_read_from_the_bundled_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # a fresh home folder: no downloaded copy
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    source = mnist_source()
    assert source.bundled and source.folder == bundled_mnist_folder()
    assert source.describe() == "MNIST bundled with the app"
    assert len(load_mnist("train")) == 60000


def test_a_named_folder_then_the_environment_then_a_downloaded_copy_come_before_the_bundled_one(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    cache = download_folder()
    assert cache == tmp_path / "home" / ".cache" / "diffusion-stepper" / "mnist"
    cache.mkdir(parents=True)
    shutil.copy(bundled_mnist_folder() / f"{FILES[('test', 'images')]}.gz", cache)
    assert mnist_source(split="test").bundled  # half a split is not a copy to read
    shutil.copy(bundled_mnist_folder() / f"{FILES[('test', 'labels')]}.gz", cache)
    assert mnist_source(split="test").folder == cache and mnist_source(split="test").origin == "downloaded copy"
    assert mnist_source(split="train").bundled

    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    assert mnist_source().folder == tmp_path / "env" and download_folder() == tmp_path / "env"
    assert mnist_source("/elsewhere").folder.as_posix() == "/elsewhere"
    assert mnist_source("/elsewhere").describe() == "MNIST in /elsewhere (chosen folder)"


def test_download_checks_checksums(tmp_path, mnist_dir):
    target = tmp_path / "mnist"
    bad_mirror = tmp_path / "bad-mirror"
    bad_mirror.mkdir()
    for path in mnist_dir.glob("*.gz"):
        (bad_mirror / path.name).write_bytes(gzip.compress(b"tampered"))
    # The tampered mirror is tried first and rejected; the good one is used.
    download_mnist(target, mirrors=(bad_mirror.as_uri() + "/", mnist_dir.as_uri() + "/"))
    assert torch.bincount(load_mnist("test", target).labels).tolist() == TEST_LABEL_COUNTS
    assert not list(target.glob(".*partial"))

    with pytest.raises(DataError, match="checksum mismatch"):
        download_mnist(tmp_path / "other", mirrors=(bad_mirror.as_uri() + "/",))
