"""Bad input never reaches a traceback: valid trajectory files, sidecars and argument lists,
mutated at random (hypothesis), must each end in exit 0, or in exit 1 or 2 with one line on
stderr; and the crafted inputs that once cost gigabytes are refused within a bounded memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffusion_stepper.core import cli
from diffusion_stepper.core.errors import TrajectoryFileError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory

# CI runs the same examples every time; FUZZ_EXAMPLES=1000 FUZZ_RANDOM=1 soaks with fresh ones
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Any JSON value, including the ones JSON-with-NaN allows, large numbers and deep-ish nesting
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def run_cli(capsys, *argv) -> tuple[int, str]:
    """The command in this process; anything but a clean exit propagates and fails the test."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def assert_clean_outcome(code: int, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err
    if code:
        lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]  # progress bars aside
        assert len(lines) == 1 and lines[0].startswith("diffusion-stepper: error"), err


@pytest.fixture(scope="module")
def valid_run(tmp_path_factory) -> Path:
    """A small real trajectory: the tiny class DDPM model sampled for 3 steps."""
    from tests.conftest import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("fuzz")
    checkpoint = write_tiny_checkpoint(folder / "model", "class", "ddpm")
    path = folder / "run.npz"
    code = cli.main(
        ["sample", "mnist", "--checkpoint", str(checkpoint), "--steps", "3", "--classes", "0,1", "--out", str(path)]
    )
    assert code == 0
    return path


def read_members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def write_members(path: Path, members: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **members)
    return path


def assert_loads_or_refuses(path: Path, capsys) -> None:
    """The file opens, or is refused with one TrajectoryFileError line naming it; and the CLI
    commands that read it end cleanly either way."""
    try:
        load_trajectory(path)
    except TrajectoryFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    assert_clean_outcome(*run_cli(capsys, "inspect", path))


@FUZZ
@given(position=st.floats(0, 1, exclude_max=True), value=st.integers(0, 255))
def test_a_flipped_byte_anywhere_in_a_trajectory_is_read_or_refused(tmp_path, capsys, valid_run, position, value):
    data = bytearray(valid_run.read_bytes())
    data[int(position * len(data))] = value
    broken = tmp_path / "flipped.npz"
    broken.write_bytes(bytes(data))
    assert_loads_or_refuses(broken, capsys)


def key_paths(meta: dict, prefix=()) -> list[tuple]:
    """Every key path into the meta, e.g. ("params", "objective", "schedule", "T")."""
    paths = []
    for key, value in meta.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths += key_paths(value, (*prefix, key))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            paths += key_paths(value[0], (*prefix, key, 0))
    return paths


def replaced(document, path: tuple, value):
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


DELETE = object()


@FUZZ
@given(data=st.data())
def test_any_meta_field_replaced_by_any_json_is_read_or_refused(tmp_path, capsys, valid_run, data):
    members = read_members(valid_run)
    meta = json.loads(str(members["meta"]))
    path = data.draw(st.sampled_from(key_paths(meta)))
    value = data.draw(json_values | st.just(DELETE))
    members["meta"] = np.asarray(json.dumps(replaced(meta, path, value)))
    assert_loads_or_refuses(write_members(tmp_path / "meta.npz", members), capsys)


@FUZZ
@given(data=st.data())
def test_any_array_replaced_by_any_small_array_is_read_or_refused(tmp_path, capsys, valid_run, data):
    members = read_members(valid_run)
    name = data.draw(st.sampled_from([*members, "extra_junk"]))
    dtype = data.draw(st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64", "<U3", "float16"]))
    shape = data.draw(st.lists(st.integers(0, 4), max_size=6).map(tuple))
    fill = data.draw(st.sampled_from([0.0, 1.0, -5.0, 1e30, np.nan, np.inf]))
    with np.errstate(invalid="ignore", over="ignore"):
        members[name] = np.full(shape, fill).astype(dtype)
    assert_loads_or_refuses(write_members(tmp_path / "arrays.npz", members), capsys)


def test_each_kind_of_crafted_trajectory_is_refused_naming_file_and_field(tmp_path, valid_run):
    members = read_members(valid_run)
    meta = json.loads(str(members["meta"]))

    def refused(name: str, fragment: str, **changes) -> None:
        path = write_members(tmp_path / f"{name}.npz", {**members, **changes})
        with pytest.raises(TrajectoryFileError) as raised:
            load_trajectory(path)
        message = str(raised.value)
        assert message.startswith(str(path)) and fragment in message and "\n" not in message

    def with_meta(**fields) -> np.ndarray:
        return np.asarray(json.dumps({**meta, **fields}))

    refused("string-t", "t must be", t=np.asarray(["a", "b", "c", "d"]))
    refused("nan-t", "NaN", t=np.asarray([np.nan, 1.0, 2.0, 3.0]))
    refused("string-labels", "labels must be", labels=np.asarray(["0", "1"]))
    refused("range-text", "meta.value_range", meta=with_meta(value_range="abc"))
    refused("range-short", "meta.value_range", meta=with_meta(value_range=[0]))
    refused("range-flat", "low below high", meta=with_meta(value_range=[1, 1]))
    refused(
        "alpha-bar",
        "meta.coeffs[1].alpha_bar_t",
        meta=with_meta(coeffs=[*meta["coeffs"][:1], {"alpha_bar_t": 1.5}, *meta["coeffs"][2:]]),
    )
    refused("coeff-type", "meta.coeffs[0].t", meta=with_meta(coeffs=[{"t": "soon"}, *meta["coeffs"][1:]]))
    refused("extras-list", "meta.extras", meta=with_meta(extras=[1, 2]))
    refused("deep", "nested too deep", meta=np.asarray('{"a":' * 100_000 + "1" + "}" * 100_000))
    refused(
        "empty-images",
        "holds no pictures",
        **{name: members[name][:, :0] for name in ("x_t", "x0_hat", "eps_hat")},
        labels=members["labels"][:0],
    )
    refused(
        "zero-size", "holds no pictures", **{name: members[name][..., :0, :0] for name in ("x_t", "x0_hat", "eps_hat")}
    )

    # a member that is not an array
    not_npy = tmp_path / "not-npy.npz"
    with zipfile.ZipFile(not_npy, "w") as archive:
        archive.writestr("x_t", b"hello")
    with pytest.raises(TrajectoryFileError, match="which is not an array"):
        load_trajectory(not_npy)


def write_npy_member(archive: zipfile.ZipFile, name: str, header_shape: tuple, payload: bytes, dtype="<f4") -> None:
    """A .npy member whose header declares `header_shape` whatever the payload holds."""
    header = {"descr": dtype, "fortran_order": False, "shape": header_shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    archive.writestr(name + ".npy", buffer.getvalue() + payload, compress_type=zipfile.ZIP_DEFLATED)


def crafted_archives(folder: Path, meta_text: str) -> dict[str, Path]:
    """Small files that would once have cost gigabytes: headers declaring huge arrays, a zip bomb."""
    meta = np.asarray(meta_text)
    meta_buffer = io.BytesIO()
    np.lib.format.write_array(meta_buffer, meta)
    files = {}
    for name, shape, payload in (
        ("header-31gb", (100, 10, 3, 1600, 1600), b"\0" * 64),
        ("header-1e20", (10**10, 10**10), b"\0" * 64),
    ):
        path = folder / f"{name}.npz"
        with zipfile.ZipFile(path, "w") as archive:
            write_npy_member(archive, "x_t", shape, payload)
            archive.writestr("meta.npy", meta_buffer.getvalue())
        files[name] = path
    bomb = folder / "bomb.npz"  # 300 MB of zeros that deflate to 300 kB, written a megabyte at a time
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (75, 1, 1, 1000, 1000)}
        )
        with archive.open("x_t.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(300):
                member.write(bytes(1_000_000))
        archive.writestr("meta.npy", meta_buffer.getvalue())
    files["zip-bomb"] = bomb
    return files


def peak_memory_of(argv: list[str]) -> tuple[int, str, float]:
    """Run the console script's main in a fresh Python; its exit code, stderr, and peak memory in MB."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        from diffusion_stepper.visualizer.launcher import main
        try:
            code = main({argv!r})
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
        sys.stderr.write("PEAK %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        sys.exit(code)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    peak_kb = int(lines[-1].split()[1])
    return result.returncode, "\n".join(lines[:-1]), peak_kb / 1024


@pytest.mark.slow
def test_crafted_small_files_are_refused_within_one_gigabyte(tmp_path, valid_run, tiny_checkpoints):
    meta_text = str(read_members(valid_run)["meta"])
    cases = {name: ["inspect", str(path)] for name, path in crafted_archives(tmp_path, meta_text).items()}
    sidecar = json.loads(tiny_checkpoints["class-flow"].read_text())
    for name, change in (
        ("hidden-3000", {"architecture": {**sidecar["architecture"], "hidden": 3000}}),
        ("num-ts-1e9", {"objective": {"name": "flow", "num_ts": 10**9}}),
        ("classes-1e9", {"architecture": {**sidecar["architecture"], "num_classes": 10**9}}),
    ):
        path = tmp_path / name / "epoch-001.json"
        path.parent.mkdir()
        path.write_text(json.dumps({**sidecar, **change}))
        os.symlink(tiny_checkpoints["class-flow"].with_suffix(".safetensors"), path.with_suffix(".safetensors"))
        cases[name] = ["sample", "mnist", "--checkpoint", str(path), "--out", str(tmp_path / f"{name}.npz")]
    cases["per-class-1e9"] = [
        "sample", "mnist", "--checkpoint", str(tiny_checkpoints["class-flow"]), "--per-class", "1000000000",
        "--out", str(tmp_path / "many.npz"),
    ]  # fmt: skip
    cases["classes-range-1e8"] = ["inspect", str(valid_run), "--step", "0-100000000"]
    assert all(path.stat().st_size < 10e6 for path in tmp_path.rglob("*") if path.is_file())
    with ThreadPoolExecutor(2) as pool:  # two processes at a time: each measures its own peak
        outcomes = dict(zip(cases, pool.map(peak_memory_of, cases.values())))
    for name, (code, err, peak_mb) in outcomes.items():
        assert code in (1, 2), (name, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (name, err)
        assert peak_mb < 1024, (name, peak_mb)


@FUZZ
@given(data=st.data())
def test_any_sidecar_field_replaced_by_any_json_samples_or_refuses(tmp_path_factory, capsys, data):
    from tests.conftest import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("sidecar")
    model = data.draw(st.sampled_from([("class", "ddpm"), ("time", "flow"), ("single-step", None)]))
    checkpoint = write_tiny_checkpoint(folder, *model)
    sidecar = json.loads(checkpoint.read_text())
    path = data.draw(st.sampled_from(key_paths(sidecar)))
    value = data.draw(json_values | st.just(DELETE))
    checkpoint.write_text(json.dumps(replaced(sidecar, path, value)))
    out = folder / "run.npz"
    assert_clean_outcome(*run_cli(capsys, "sample", "mnist", "--checkpoint", checkpoint, "--out", out))


NUMBER_TEXTS = st.sampled_from(
    [
        "0",
        "-1",
        "1",
        "3",
        "nan",
        "inf",
        "-inf",
        "1e-9",
        "1e6",
        "100000",
        "1e308",
        str(2**64),
        str(2**70),
        "",
        "x",
        "2.5",
    ]
)
SAMPLE_FLAGS = [
    "--per-class",
    "--steps",
    "--seed",
    "--guidance",
    "--sigma",
    "--keep-every",
    "--classes",
    "--num",
    "--eta",
    "--sampler",
]
EXPORT_FLAGS = ["--fps", "--every", "--scale", "--width", "--frames", "--steps-shown", "--panel"]


@FUZZ
@given(flag=st.sampled_from(SAMPLE_FLAGS), value=NUMBER_TEXTS | st.text(max_size=12))
def test_any_value_of_any_sample_flag_samples_or_refuses(tmp_path_factory, capsys, flag, value):
    from tests.conftest import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("flags")
    checkpoint = write_tiny_checkpoint(folder, "class", "flow")
    argv = ["sample", "mnist", "--checkpoint", checkpoint, "--classes", "0", "--steps", "2", "--out", folder / "r.npz"]
    code, err = run_cli(capsys, *argv, flag, value)
    assert_clean_outcome(code, err)


@FUZZ
@given(flag=st.sampled_from(EXPORT_FLAGS), value=NUMBER_TEXTS | st.text(max_size=12))
def test_any_value_of_any_export_flag_exports_or_refuses(tmp_path, capsys, valid_run, flag, value):
    code, err = run_cli(capsys, "export", valid_run, "--gif", tmp_path / "out.gif", flag, value)
    assert_clean_outcome(code, err)
    if code == 0:
        assert (tmp_path / "out.gif").stat().st_size > 0


@pytest.mark.parametrize(
    "out, fragment",
    [
        ("", "--out is empty"),
        ("{tmp}", "is a folder"),
        ("{tmp}/a-file/run.npz", "is a file, not a folder"),
        ("/proc/run.npz", "cannot write there"),
        ("{tmp}/" + "n" * 300 + ".npz", "file name is too long"),
    ],
)
def test_a_bad_out_is_refused_before_any_sampling(tmp_path, capsys, tiny_checkpoints, monkeypatch, out, fragment):
    (tmp_path / "a-file").write_text("not a folder")
    started = []
    monkeypatch.setattr("diffusion_stepper.core.mnist.sampling.start_sampling", lambda request: started.append(1))
    code, err = run_cli(
        capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["class-ddpm"], "--out", out.format(tmp=tmp_path)
    )
    assert code == 1 and fragment in err and not started
    assert_clean_outcome(code, err)


def test_a_bad_out_dir_is_refused_before_any_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("not a folder")
    trained = []
    monkeypatch.setattr("diffusion_stepper.core.mnist.training.train_on_mnist", lambda *a, **k: trained.append(1))
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "run", "/proc/run"):
        code, err = run_cli(capsys, "train", "mnist", "--preset", "quick", "--out", out)
        assert code == 1 and not trained, err
        assert_clean_outcome(code, err)


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "loop"])
def test_an_input_that_is_not_a_regular_file_says_what_it_is(tmp_path, capsys, kind):
    def make(name: str) -> Path:
        path = tmp_path / name
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)  # reading it would block for ever
        elif kind == "device":
            return Path("/dev/zero")  # reading it would never end
        else:
            os.symlink(tmp_path / f"{name}.other", path)
            os.symlink(path, tmp_path / f"{name}.other")
        return path

    expected = {"folder": "is a folder", "fifo": "not a regular file", "device": "not a regular file"}
    code, err = run_cli(capsys, "inspect", make("run.npz"))
    assert code == 1 and expected.get(kind, "cannot open it") in err
    assert_clean_outcome(code, err)
    code, err = run_cli(capsys, "sample", "mnist", "--checkpoint", make("model.json"), "--out", tmp_path / "r.npz")
    assert code == 1 and (kind not in ("fifo", "loop") or expected.get(kind, "cannot open it") in err), err
    assert_clean_outcome(code, err)


def test_stale_partials_from_a_killed_writer_are_removed_at_the_next_write(tmp_path, valid_run):
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".run.npz.{dead_pid}.0123456789ab.partial"
    stale.write_bytes(b"half a file")
    live = tmp_path / f".other.npz.{os.getpid()}.0123456789ab.partial"  # a write in progress here: kept
    live.write_bytes(b"being written")
    save_trajectory(load_trajectory(valid_run), tmp_path / "run.npz")
    assert not stale.exists() and live.exists()


def test_unknown_command_is_an_error_not_the_app(capsys, monkeypatch):
    from diffusion_stepper.visualizer import launcher

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # with a display, a typo must still not open the app
    assert launcher.main(["sampel", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'sampel' (did you mean sample?)" in err and len(err.splitlines()) == 1


def test_ctrl_c_while_importing_ends_quietly(monkeypatch, capsys):
    from diffusion_stepper.visualizer import launcher

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "_dispatch", interrupted)
    assert launcher.main(["models"]) == 130
    assert capsys.readouterr().err == "diffusion-stepper: interrupted\n"


@pytest.mark.slow  # the command in a process of its own
def test_a_closed_pipe_ends_quietly():
    result = subprocess.run(
        f"{sys.executable} -m diffusion_stepper.visualizer models | true", shell=True, capture_output=True, text=True
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


@pytest.mark.slow
def test_resume_redraws_a_lost_sample_grid_and_refuses_a_sidecar_that_cannot_resume(tmp_path, capsys, mnist_dir):
    out = tmp_path / "run"
    common = ["--hidden", 4, "--limit", 64, "--batch-size", 32, "--epoch-samples", 10, "--epoch-sample-steps", 2]
    code, err = run_cli(capsys, "train", "mnist", "--epochs", 1, *common, "--data-dir", mnist_dir, "--out", out)
    assert code == 0, err
    grid = out / "epoch-001-samples.png"
    drawn = grid.read_bytes()
    grid.unlink()  # as a kill between an older version's sidecar and its grid left it
    resume = ["train", "mnist", "--data-dir", mnist_dir, "--out", out, "--resume"]
    code, err = run_cli(capsys, *resume, out / "epoch-001.json", "--epochs", 2)
    assert code == 0, err
    assert grid.read_bytes() == drawn and (out / "epoch-002-samples.png").is_file()  # the same seed, the same grid

    sidecar_path = out / "epoch-002.json"
    sidecar = json.loads(sidecar_path.read_text())
    for key in ("hyperparameters", "optimizer_param_groups", "iteration", "epoch"):
        sidecar_path.write_text(json.dumps({name: value for name, value in sidecar.items() if name != key}))
        code, err = run_cli(capsys, *resume, sidecar_path, "--epochs", 3)
        assert code == 1 and key in err, err
        assert_clean_outcome(code, err)
    hyperparameters = {name: value for name, value in sidecar["hyperparameters"].items() if name != "batch_size"}
    sidecar_path.write_text(json.dumps({**sidecar, "hyperparameters": hyperparameters}))
    code, err = run_cli(capsys, *resume, sidecar_path, "--epochs", 3)
    assert code == 1 and "batch_size" in err


def test_an_export_too_large_to_hold_is_refused_before_rendering(tmp_path, capsys, valid_run, monkeypatch):
    import torch

    from diffusion_stepper.core.errors import UserFacingError
    from diffusion_stepper.core.exports.render import check_export_fits
    from diffusion_stepper.core.frames import Frame, Trajectory

    meta = load_trajectory(valid_run).meta
    big = torch.zeros(4, 3, 256, 256)
    frames = [Frame(index=i, t=float(i), x_t=big, x0_hat=big, coeffs={}) for i in range(2)]
    trajectory = Trajectory(meta, frames, None)
    with pytest.raises(ValueError, match="larger than 16,384 px on a side"):
        check_export_fits(trajectory, ["x_t", "x0_hat"], 2, 64, None)
    check_export_fits(trajectory, ["x_t", "x0_hat"], 2, 4, None)  # the usual zoom fits
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 10_000_000)
    with pytest.raises(UserFacingError, match=r"2 frames of .* would need about .* of memory"):
        check_export_fits(trajectory, ["x_t", "x0_hat"], 2, 4, None)
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 1_000_000)
    code, err = run_cli(capsys, "export", valid_run, "--gif", tmp_path / "a.gif", "--scale", 4)
    assert code == 1 and "memory" in err and not (tmp_path / "a.gif").exists()  # the CLI says the same, in one line
    assert_clean_outcome(code, err)
