import json
import zipfile

import numpy as np
import pytest
import torch

from diffusion_stepper.core.errors import TrajectoryFileError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist


@pytest.fixture
def class_trajectory(tiny_checkpoints):
    run = sample_mnist(load_checkpoint(tiny_checkpoints["class-ddpm"]), classes=[0, 5], steps=4, seed=11)
    return Trajectory(run.meta, list(run.frames), run.labels)


def test_round_trip_is_exact(tmp_path, class_trajectory):
    path = save_trajectory(class_trajectory, tmp_path / "run.npz")
    loaded = load_trajectory(path)
    assert len(loaded) == len(class_trajectory) == 5  # steps + 1
    for name in ("x_t", "x0_hat", "eps_hat", "eps_cond", "eps_uncond"):
        if name.startswith("eps_c") or name.startswith("eps_u"):
            for original, copy in zip(class_trajectory.frames, loaded.frames):
                assert (name in original.extras) == (name in copy.extras)
                if name in original.extras:
                    assert torch.equal(original.extras[name], copy.extras[name])
        else:
            assert torch.equal(class_trajectory.stack(name), loaded.stack(name))
    assert [f.t for f in loaded] == [f.t for f in class_trajectory]
    assert [f.coeffs for f in loaded] == [f.coeffs for f in class_trajectory]
    assert torch.equal(loaded.labels, class_trajectory.labels)
    assert loaded.meta == json.loads(json.dumps(class_trajectory.meta))
    assert loaded.value_range == (0.0, 1.0)
    assert torch.equal(loaded.final_sample, class_trajectory.frames[-1].x_t)


def test_file_layout_is_as_documented(tmp_path, class_trajectory):
    path = save_trajectory(class_trajectory, tmp_path / "run.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert archive["x_t"].shape == (5, 2, 1, 28, 28) and archive["x_t"].dtype == np.float32
        assert archive["x0_hat"].shape == archive["eps_hat"].shape == (5, 2, 1, 28, 28)
        assert archive["t"].tolist() == [20.0, 15.0, 10.0, 5.0, 0.0]
        assert archive["labels"].tolist() == [0, 5]
        meta = json.loads(str(archive["meta"]))
    for key in ("algorithm", "model", "checkpoint", "seed", "params", "value_range"):
        assert key in meta
    assert meta["seed"] == 11 and meta["params"]["guidance"] == 5.0 and meta["value_range"] == [0.0, 1.0]
    assert not list(tmp_path.glob("*.partial"))


def one_line_error(path, match):
    with pytest.raises(TrajectoryFileError) as info:
        load_trajectory(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert match in message
    return message


def test_truncated_file(tmp_path, class_trajectory):
    path = save_trajectory(class_trajectory, tmp_path / "run.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    one_line_error(path, "truncated or corrupt")


def test_corrupt_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01not a zip at all" * 50)
    one_line_error(garbage, "not a readable trajectory file")

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    one_line_error(foreign, "not a diffusion-stepper trajectory")

    pickled = tmp_path / "pickled.npz"
    np.savez(
        pickled,
        x_t=np.zeros((1, 1, 1, 2, 2)),
        x0_hat=np.zeros((1, 1, 1, 2, 2)),
        t=np.zeros(1),
        meta=np.array([{"format": "x"}], dtype=object),
    )
    one_line_error(pickled, "array 'meta' holds object values")  # refused: it would need pickle

    one_line_error(tmp_path / "missing.npz", "no such file")


def test_inconsistent_contents(tmp_path, class_trajectory):
    path = save_trajectory(class_trajectory, tmp_path / "run.npz")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}

    def rewrite(name, **changes):
        broken = tmp_path / name
        np.savez(broken, **{**arrays, **changes})
        return broken

    one_line_error(rewrite("short_t.npz", t=np.zeros(2)), "one per frame")
    one_line_error(rewrite("bad_x0.npz", x0_hat=np.zeros((5, 2, 1, 28, 27), np.float32)), "differs from x_t")
    one_line_error(rewrite("bad_meta.npz", meta=np.asarray("{not json")), "not valid JSON")
    other_format = json.dumps({"format": "someone-else", "version": 1})
    one_line_error(rewrite("other.npz", meta=np.asarray(other_format)), "no matching 'format'")
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = 99
    one_line_error(rewrite("future.npz", meta=np.asarray(json.dumps(meta))), "version 99")


def test_save_is_atomic_when_writing_fails(tmp_path, class_trajectory, monkeypatch):
    path = save_trajectory(class_trajectory, tmp_path / "out" / "run.npz")
    before = path.read_bytes()

    written = []

    def explode(member, array, **kwargs):  # the disk fills after the first array is written
        if written:
            raise OSError("disk full")
        written.append(array)
        return write_array(member, array, **kwargs)

    write_array = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", explode)
    with pytest.raises(OSError):
        save_trajectory(class_trajectory, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["run.npz"]  # no temporary left behind
    assert zipfile.is_zipfile(path)


def test_a_file_that_is_not_an_archive_is_refused_without_pickle_advice(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("garbage")
    with pytest.raises(TrajectoryFileError) as raised:
        load_trajectory(text)
    message = str(raised.value)
    assert "notes.npz: not a readable trajectory file" in message and "pickle" not in message
