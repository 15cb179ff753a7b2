"""The typed run record: what each family's sampler writes in `meta` reads back as fields, a key a
run did not record reads as None, and the record survives the trajectory file."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings
from diffusion_stepper.core.deepfloyd_if.models import load_if_stage
from diffusion_stepper.core.deepfloyd_if.tasks import IFRequest
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory, write_npz
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist
from diffusion_stepper.core.run_meta import IMAGES, PARTICLES, PlaneView, RunMeta
from diffusion_stepper.core.toy2d.datasets import DATASETS
from diffusion_stepper.core.toy2d.runs import FIELD_GRID, VIEW_EXTENT, Toy2DSettings, Toy2DSource, toy2d_run
from diffusion_stepper.core.toy2d.training import make_objective


def recorded(run) -> Trajectory:
    return Trajectory(run.meta, list(run.frames), run.labels, run.data)


@pytest.fixture
def mnist_run(tiny_checkpoints) -> Trajectory:
    checkpoint = load_checkpoint(tiny_checkpoints["class-ddpm"])
    return recorded(sample_mnist(checkpoint, classes=[3, 7], steps=4, guidance=5.0, sampler="ddim", eta=0.5, seed=11))


@pytest.fixture(scope="module")
def if_stage(tiny_if):
    return load_if_stage(1, model_dir=tiny_if.stage1_dir, device="cpu", allow_cpu=True)


def if_run(tiny_if, stage, **fields) -> Trajectory:
    table = PromptEmbeddings.from_file(tiny_if.embeddings_file)
    return recorded(IFRequest(stage=stage, prompt_table=table, stride=300, seed=2, **fields).start())


@pytest.fixture
def points_run() -> Trajectory:
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    settings = Toy2DSettings(count=64, steps=4, sampler="ddim", eta=0.5, label=2, guidance=3.0, seed=5)
    return recorded(toy2d_run(source, settings))


def test_an_mnist_run_reads_as_fields(mnist_run, tiny_checkpoints):
    meta = mnist_run.run_meta
    assert (meta.algorithm, meta.family, meta.kind) == ("ddpm+cfg", "ddpm", IMAGES)
    assert meta.model == load_checkpoint(tiny_checkpoints["class-ddpm"]).name
    assert (meta.sampler, meta.eta, meta.steps, meta.guidance, meta.seed) == ("ddim", 0.5, 4, 5.0, 11)
    assert meta.classes == (3, 7) and meta.value_range == (0.0, 1.0) and meta.source == "pure noise"
    assert meta.objective["name"] == "ddpm" and meta.objective["schedule"]["T"] == 20
    # what only other families record
    assert meta.plane is None and meta.task is None and meta.views is None and meta.prompts is None
    assert meta.params["per_class"] == mnist_run.meta["params"]["per_class"]  # the raw settings, read-only
    with pytest.raises(TypeError):
        meta.params["steps"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.steps = 1  # type: ignore[misc]


def test_a_flow_run_is_of_the_flow_family(tiny_checkpoints):
    run = recorded(sample_mnist(load_checkpoint(tiny_checkpoints["time-flow"]), num=2, steps=3))
    assert (run.run_meta.family, run.run_meta.sampler, run.run_meta.classes) == ("flow", "euler", None)


def test_if_runs_read_as_fields(tiny_if, if_stage):
    anagram = if_run(tiny_if, if_stage, task="anagram", prompt=tiny_if.prompts[1:3], views=["identity", "flip"])
    meta = anagram.run_meta
    assert (meta.family, meta.kind, meta.task, meta.stage) == ("ddpm", IMAGES, "anagram", 1)
    assert meta.views == ("identity", "flip") and meta.prompts == tuple(tiny_if.prompts[1:3])
    assert meta.timesteps and all(isinstance(t, int) for t in meta.timesteps)
    assert meta.steps == len(meta.timesteps) and len(meta.alpha_bars) == 1000
    assert meta.value_range == (-1.0, 1.0) and meta.checkpoint == str(tiny_if.stage1_dir)
    assert meta.blur_kernel is None and meta.plane is None
    hybrid = if_run(tiny_if, if_stage, task="hybrid", prompt=tiny_if.prompts[3:5], blur_kernel=5, blur_sigma=1.5)
    assert (hybrid.run_meta.task, hybrid.run_meta.blur_kernel, hybrid.run_meta.blur_sigma) == ("hybrid", 5, 1.5)
    assert hybrid.run_meta.views is None


def test_a_2d_run_reads_as_particles_with_its_view(points_run):
    meta = points_run.run_meta
    assert (meta.kind, meta.family, meta.algorithm) == (PARTICLES, "ddpm", "ddpm+cfg")
    dataset = DATASETS["8-gaussians"]
    assert meta.plane == PlaneView(dataset.name, dataset.title, VIEW_EXTENT, FIELD_GRID, True)
    assert (meta.sampler, meta.eta, meta.guidance, meta.classes, meta.num_samples) == ("ddim", 0.5, 3.0, (2,), 64)
    assert meta.value_range == (-VIEW_EXTENT, VIEW_EXTENT)


def test_the_family_comes_from_the_algorithms_name():
    names = {"ddpm+cfg": "ddpm", "if-sdedit": "ddpm", "flow-forward": "flow", "single-step": "single-step"}
    for algorithm, family in {**names, "noising": "noising", "anagram-turn": "anagram-turn"}.items():
        assert RunMeta.of({"algorithm": algorithm}).family == family


def test_a_record_the_run_did_not_fill_reads_none():
    meta = RunMeta.of({})
    assert (meta.algorithm, meta.family, meta.kind) == ("", "", IMAGES)
    unset = [field.name for field in dataclasses.fields(RunMeta) if field.name not in ("algorithm", "family", "kind")]
    assert all(getattr(meta, name) is None for name in unset if name != "params") and dict(meta.params) == {}


def test_an_old_files_meta_gives_none_where_it_says_nothing(mnist_run, tmp_path):
    """A file written before runs recorded their sampler, η, epoch, clipping and device still opens,
    with those fields None and the rest as written."""
    path = save_trajectory(mnist_run, tmp_path / "new.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): np.load(archive.open(name)) for name in archive.namelist()}
    meta = json.loads(str(members["meta"][()]))
    for key in ("sampler", "eta", "epoch", "x0_clip", "architecture", "source"):
        meta["params"].pop(key, None)
    meta.pop("device")
    members["meta"] = np.asarray(json.dumps(meta))
    write_npz(tmp_path / "old.npz", members)
    old = load_trajectory(tmp_path / "old.npz").run_meta
    assert old.sampler is None and old.eta is None and old.epoch is None and old.x0_clip is None
    assert old.device is None and old.source is None
    assert (old.algorithm, old.steps, old.guidance, old.classes) == ("ddpm+cfg", 4, 5.0, (3, 7))


def test_the_record_survives_the_file(mnist_run, points_run, tiny_if, if_stage, tmp_path):
    anagram = if_run(tiny_if, if_stage, task="anagram", prompt=tiny_if.prompts[1:3], views=["identity", "rot180"])
    for name, run in (("mnist", mnist_run), ("points", points_run), ("anagram", anagram)):
        loaded = load_trajectory(save_trajectory(run, tmp_path / f"{name}.npz"))
        assert loaded.run_meta == run.run_meta, name


def test_the_record_follows_its_dict(mnist_run):
    """Producers and tests may still edit `meta`: the record is read from it each time."""
    mnist_run.meta["params"]["steps"] = 9
    assert mnist_run.run_meta.steps == 9
