"""The headless command line: everything the GUI does, without a display.

    diffusion-stepper train mnist ...     train a part B model, one checkpoint per epoch
    diffusion-stepper sample mnist ...    sample a checkpoint into a trajectory file
    diffusion-stepper experiment mnist NAME   a part B experiment (the app's Experiments menu) into files
    diffusion-stepper export RUN.npz ...  GIF or PNG contact sheet of a trajectory
    diffusion-stepper models              list the bundled checkpoints
    diffusion-stepper download mnist      fetch MNIST once, checking checksums

Bad input ends the command with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from core import __version__, bundled
from core.errors import UserFacingError
from core.parsing import parse_int_list

COMMANDS = ("train", "sample", "experiment", "export", "inspect", "models", "download", "bundle")
EXIT_USAGE = 2
PROG = "diffusion-stepper"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def int_list(text: str) -> list[int]:
    try:
        return parse_int_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from core.devices import DEVICE_CHOICES
    from core.experiments import EXPERIMENTS
    from core.mnist_sampling import X0_CLIP_CHOICES
    from core.export import PANEL_CHOICES, SIDE_BY_SIDE
    from core.training import MODEL_KINDS, PRESETS

    parser = OneLineParser(
        prog=PROG,
        description="Step through diffusion sampling frame by frame. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = commands.add_parser("train", help="train a CS180 part B model on MNIST")
    train.add_argument("dataset", choices=["mnist"])
    train.add_argument("--model", choices=MODEL_KINDS, required=True)
    train.add_argument("--objective", choices=["ddpm", "flow"], help="for time/class models (default ddpm)")
    train.add_argument("--preset", choices=PRESETS, default="course",
                       help="course: CS180's recipe; quick: D=32 on 3,000 digits, a falling loss within a minute on a CPU")
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--hidden", type=positive_int, help="UNet hidden size D")
    train.add_argument("--batch-size", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--no-lr-decay", action="store_true", help="keep the learning rate constant")
    train.add_argument("--sigma", type=non_negative_float, help="single-step noise level (default 0.5)")
    train.add_argument("--pure-noise", action="store_true", help="single-step: train on pure noise z = ε (part B's average digit)")
    train.add_argument("--p-uncond", type=non_negative_float, help="class dropout probability (default 0.1)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    train.add_argument("--data-dir", help="folder with the MNIST IDX files (or set DIFFUSION_STEPPER_DATA)")
    train.add_argument("--limit", type=positive_int, help="train on the first N images only")
    train.add_argument("--log-every", type=positive_int, default=10, help="iterations per loss event")
    train.add_argument("--epoch-samples", type=int, default=40, help="samples drawn after each epoch (0: none)")
    train.add_argument("--epoch-sample-steps", type=positive_int, help="sampling steps for the epoch grid")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from one of its checkpoints")
    train.add_argument("--out", required=True, help="directory for the checkpoints")

    sample_parent = commands.add_parser("sample", help="sample a model into a trajectory file (mnist, or DeepFloyd IF: if)")
    sample_targets = sample_parent.add_subparsers(dest="dataset", metavar="{mnist,if}", required=True, parser_class=OneLineParser)
    sample = sample_targets.add_parser("mnist", help="an MNIST model (part B)")
    sample.add_argument("--checkpoint", default=bundled.DEFAULT_MODEL, help="bundled name or path (default %(default)s)")
    sample.add_argument("--classes", type=int_list, help="digits to sample, e.g. 0,1,2 or 0-9 (class models)")
    sample.add_argument("--per-class", type=positive_int, default=1)
    sample.add_argument("--num", type=positive_int, help="number of samples (unconditional models)")
    sample.add_argument("--guidance", type=float, help="CFG scale (class models; default 5)")
    sample.add_argument("--steps", type=int, help="sampling steps (default: the model's own)")
    sample.add_argument("--sigma", type=non_negative_float, help="single-step: noise level of the input")
    sample.add_argument("--noisy-test", action="store_true", help="single-step: denoise noised test digits, not pure noise")
    sample.add_argument("--data-dir", help="MNIST folder, for --noisy-test")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    sample.add_argument("--x0-clip", choices=X0_CLIP_CHOICES,
                        help="DDPM: static clips x̂0 to [0, 1] in every step; none is the course's plain formula (default: the model's choice)")
    sample.add_argument("--keep-every", type=positive_int, default=1, metavar="K",
                        help="store every K-th frame and the last, for big runs (default: every frame)")
    sample.add_argument("--out", required=True, help="trajectory file to write (.npz)")

    add_if_sample_arguments(sample_targets.add_parser("if", help="DeepFloyd IF (part A): sample, denoise, edit, anagrams, hybrids, upscale"))

    experiment = commands.add_parser("experiment", help="run a part B experiment (as the app's Experiments menu does)")
    experiment.add_argument("dataset", choices=["mnist"])
    experiment.add_argument("name", choices=list(EXPERIMENTS), help="which experiment")
    experiment.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    experiment.add_argument("--seed", type=int, default=0)
    experiment.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    experiment.add_argument("--steps", type=positive_int, help="sampling steps of the sampling runs (default: each model's own)")
    experiment.add_argument("--data-dir", help="MNIST folder, for the experiments on test digits")
    experiment.add_argument("--run-dir", help="epochs: the training run's folder")
    experiment.add_argument("--epochs", type=int_list, default=[1, 5, 10, 20], help="epochs: which (default 1,5,10,20)")

    export = commands.add_parser("export", help="render a trajectory to a GIF or a PNG contact sheet")
    export.add_argument("trajectory")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--gif", metavar="OUT.gif")
    target.add_argument("--mp4", metavar="OUT.mp4", help="H.264 video that plays in browsers and slides")
    target.add_argument("--png-grid", metavar="OUT.png")
    export.add_argument("--panel", default=SIDE_BY_SIDE, help=f"one of {', '.join(PANEL_CHOICES)} or an extra's name; several side by side as x_t,eps_hat")
    export.add_argument("--fps", type=positive_float, default=10.0)
    export.add_argument("--every", type=positive_int, default=1, help="keep every K-th frame (the last is kept)")
    export.add_argument("--frames", metavar="START:END", help="frame range, inclusive")
    export.add_argument("--scale", type=positive_int, default=4, help="integer zoom")
    export.add_argument("--steps-shown", type=int_list, help="frames for --png-grid, e.g. 0,100,200,300")
    export.add_argument("--anagram-turn", action="store_true",
                        help="a visual anagram run: animate its result turning into the second view instead of its steps")

    inspect = commands.add_parser("inspect", help="print a trajectory's steps: t, the update rule with its numbers, statistics")
    inspect.add_argument("trajectory")
    inspect.add_argument("--step", type=int_list, help="frames to print, e.g. 0,150,300 (default: all)")

    commands.add_parser("models", help="list the bundled checkpoints")

    bundle = commands.add_parser("bundle", help="copy a checkpoint into the bundled models (fp16, no training state)")
    bundle.add_argument("checkpoint")
    bundle.add_argument("--name", required=True, choices=bundled.BUNDLED_NAMES)
    bundle.add_argument("--dest", help="folder to write to (default: the installed resources/models)")
    bundle.add_argument("--steps", type=positive_int, help="the model's default sampling steps (strided; default: its full chain)")
    bundle.add_argument("--x0-clip", choices=X0_CLIP_CHOICES, help="the DDPM model's default x̂0 clipping (default: none)")

    download = commands.add_parser("download", help="download MNIST once, verifying checksums")
    download.add_argument("dataset", choices=["mnist"])
    download.add_argument("--data-dir")
    return parser


def add_if_sample_arguments(parser: argparse.ArgumentParser) -> None:
    from core.devices import DEVICE_CHOICES
    from core.if_models import STAGE_I_SIZES
    from core.if_sampling import VIEW_NAMES, X0_CLIP_CHOICES as IF_X0_CLIP_CHOICES
    from core.if_tasks import TASKS

    parser.add_argument("--task", choices=TASKS, default="sample")
    parser.add_argument("--prompt", action="append", default=[], help="the prompt (repeat, or use --prompt2.., for anagram views and hybrids)")
    for number in (2, 3, 4):
        parser.add_argument(f"--prompt{number}", help=argparse.SUPPRESS if number > 2 else "the second prompt (anagram, hybrid: the high frequencies)")
    parser.add_argument("--image", help="the starting image (any picture; for upscale also a stage I trajectory .npz)")
    parser.add_argument("--mask", help="inpainting: binary mask, white where new content goes")
    parser.add_argument("--i-start", type=int, nargs="+", metavar="K", help="start at the K-th timestep (several: one run each)")
    parser.add_argument("--views", nargs="+", choices=VIEW_NAMES, default=["identity", "flip"], help="anagram: one view per prompt")
    parser.add_argument("--t", type=int, nargs="+", metavar="T", help="forward / blur / one-step: timesteps (default 250 500 750)")
    chain = parser.add_mutually_exclusive_group()
    chain.add_argument("--steps", type=positive_int, help="the scheduler's own set_timesteps(N) list")
    chain.add_argument("--stride", type=positive_int, help="the course's 990, 990-K, ..., 0 (default: stride 30)")
    parser.add_argument("--guidance", type=non_negative_float, help="CFG scale γ (default 7; stage II 4)")
    parser.add_argument("--no-cfg", action="store_true", help="use the conditional estimate alone (the default for one-step and iterative)")
    parser.add_argument("--num", type=positive_int, default=1, help="images per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x0-clip", choices=IF_X0_CLIP_CHOICES, default="dynamic",
                        help="dynamic: IF's dynamic thresholding (default); none: the course's plain formula")
    parser.add_argument("--blur-kernel", type=positive_int, help="Gaussian kernel size (blur default 5, hybrid 33)")
    parser.add_argument("--blur-sigma", type=positive_float, default=2.0)
    parser.add_argument("--noise-level", type=int, default=250, help="upscale: noise added to the low-res image")
    parser.add_argument("--model-dir", help="a local IF stage folder (diffusers layout) instead of the hub")
    parser.add_argument("--size", choices=sorted(STAGE_I_SIZES), help="model size from the hub (default XL for stage I, L for stage II)")
    parser.add_argument("--embeddings", help="precomputed prompt embeddings (the course's dict prompt -> [1, 77, 4096])")
    parser.add_argument("--t5", action="store_true", help="encode prompts with IF's T5 encoder (about 9.5 GB)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--allow-cpu", action="store_true", help="run IF on the CPU (very slow for the real model)")
    parser.add_argument("--offload", action="store_true", help="model CPU offload, for GPUs with little memory")
    parser.add_argument("--keep-every", type=positive_int, default=1, metavar="K", help="store every K-th frame and the last")
    parser.add_argument("--out", required=True, help="trajectory file to write (.npz); several runs get -i<K> suffixes")


def _progress(total: int, description: str, unit: str = "it"):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True, file=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    from core.export import write_sample_grid
    from core.mnist_data import load_mnist
    from core.training import EpochEvent, LossEvent, config_for_resume, preset_config, train

    if args.resume:
        config = config_for_resume(args.resume, epochs=args.epochs, device=args.device)
    else:
        if args.model == "single-step" and args.objective:
            raise UserFacingError("--objective is for time and class models; the single-step model has one objective")
        config = preset_config(args.preset, args.model, args.objective)
        for name in ("epochs", "hidden", "batch_size", "lr", "sigma", "p_uncond", "epoch_sample_steps", "limit"):
            if getattr(args, name) is not None:  # flags left out keep the preset's value
                setattr(config, name, getattr(args, name))
        if args.no_lr_decay:
            config.lr_decay = False
        if args.pure_noise:
            if args.model != "single-step":
                raise UserFacingError("--pure-noise is for the single-step model")
            config.pure_noise = True
        config.seed, config.device = args.seed, args.device
        config.log_every, config.epoch_samples = args.log_every, args.epoch_samples
    data = load_mnist("train", args.data_dir)
    out_dir = Path(args.out)
    bar = None
    try:
        for event in train(config, data, out_dir, resume_from=args.resume):
            if isinstance(event, LossEvent):
                if bar is None:
                    bar = _progress(event.epoch_iterations, f"epoch {event.epoch}/{config.epochs}", unit="batch")
                bar.n = event.epoch_iteration
                bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}", img_s=f"{event.images_per_second:.0f}")
            elif isinstance(event, EpochEvent):
                if bar is not None:
                    bar.close()
                    bar = None
                message = f"epoch {event.epoch}/{config.epochs}: mean loss {event.mean_loss:.4f} in {event.seconds:.1f} s, checkpoint {event.checkpoint}"
                if event.samples is not None:
                    sample_path = event.checkpoint.with_name(event.checkpoint.stem + "-samples.png")
                    write_sample_grid(event.samples, sample_path, event.sample_labels)
                    message += f", samples {sample_path}"
                print(message, flush=True)
    finally:
        if bar is not None:
            bar.close()
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from core.frames import Trajectory, keep_every
    from core.mnist_sampling import SampleRequest, start_sampling
    from core.trajectory_file import save_trajectory

    if args.dataset == "if":
        return run_sample_if(args)
    # the flags are named like the request's fields
    run = start_sampling(SampleRequest(**{field.name: getattr(args, field.name) for field in dataclasses.fields(SampleRequest)}))
    frames = []
    with _progress(run.num_frames, "sampling", unit="frame") as bar:
        for frame in keep_every(_advancing(run.frames, bar), args.keep_every, run.num_frames):
            frames.append(frame)
    path = save_trajectory(Trajectory(run.meta, frames, run.labels), args.out)
    print(f"wrote {path}: {len(frames)} frames of {frames[0].x_t.shape[0]} images ({run.meta['algorithm']})")
    return 0


def run_sample_if(args: argparse.Namespace) -> int:
    from core.frames import Trajectory, keep_every
    from core.if_tasks import IFRequest, prepare
    from core.trajectory_file import save_trajectory

    prompts = list(args.prompt) + [p for p in (args.prompt2, args.prompt3, args.prompt4) if p]
    # the flags are named like the request's fields; the loaded parts and a branch point (compare=False) are not flags
    fields = {field.name for field in dataclasses.fields(IFRequest) if field.compare} - {"prompt"}
    requests = prepare(IFRequest(prompt=prompts, **{name: getattr(args, name) for name in fields})).expand()
    out = Path(args.out)
    for number, request in enumerate(requests, 1):
        run = request.start()
        frames = []
        with _progress(run.num_frames, f"run {number}/{len(requests)}", unit="frame") as bar:
            for frame in keep_every(_advancing(run.frames, bar), args.keep_every, run.num_frames):
                frames.append(frame)
        path = out if len(requests) == 1 else out.with_name(f"{out.stem}-i{request.i_start[0]}{out.suffix}")
        save_trajectory(Trajectory(run.meta, frames, run.labels), path)
        if number == 1:
            for note in run.meta["params"].get("image_notes", []):
                print(f"note: image {note}")
        print(f"wrote {path}: {len(frames)} frames of {frames[0].x_t.shape[0]} images ({run.meta['params']['task']})")
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from core.experiments import ExperimentOptions, experiment_requests
    from core.frames import Trajectory
    from core.trajectory_file import save_trajectory

    options = ExperimentOptions(seed=args.seed, device=args.device, steps=args.steps, data_dir=args.data_dir,
                                run_dir=args.run_dir, epochs=args.epochs)
    requests = experiment_requests(args.name, options)
    for number, request in enumerate(requests, 1):
        run = request.start()
        with _progress(run.num_frames, f"run {number}/{len(requests)}", unit="frame") as bar:
            frames = list(_advancing(run.frames, bar))
        suffix = f"-{number}" if len(requests) > 1 else ""
        path = save_trajectory(Trajectory(run.meta, frames, run.labels), Path(args.out_dir) / f"{args.name}{suffix}.npz")
        print(f"wrote {path}: {run.meta['algorithm']} · {run.meta['model']} · {len(frames)} frames")
    if "note" in run.meta:
        print(run.meta["note"])
    return 0


def _advancing(frames, bar):
    """Pass frames through, advancing the progress bar for each one produced (kept or not)."""
    for frame in frames:
        bar.update(1)
        yield frame


def _frame_range(text: Optional[str], num_frames: int) -> tuple[int, Optional[int]]:
    if not text:
        return 0, None
    try:
        start_text, end_text = text.split(":")
        start = int(start_text) if start_text else 0
        end = int(end_text) if end_text else num_frames - 1
    except ValueError:
        raise UserFacingError(f"--frames expects START:END, got {text!r}") from None
    return start, end


def run_export(args: argparse.Namespace) -> int:
    from core.export import SIDE_BY_SIDE, anagram_turn, write_animation, write_png_grid
    from core.trajectory_file import load_trajectory

    trajectory = load_trajectory(args.trajectory)
    try:
        if args.anagram_turn:
            trajectory = anagram_turn(trajectory)
            args.panel = "x_t" if args.panel == SIDE_BY_SIDE else args.panel  # the turning picture alone
        animation = args.gif or args.mp4
        if animation:
            start, end = _frame_range(args.frames, len(trajectory))
            with _progress(len(trajectory), "rendering", unit="frame") as bar:

                def advance(done: int, total: int) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                path = write_animation(trajectory, animation, args.panel, args.fps, args.every, args.scale, start, end, progress=advance)
        else:
            path = write_png_grid(trajectory, args.png_grid, args.steps_shown, args.panel, args.scale)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    print(f"wrote {path}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """The equation panel and the histogram's numbers, as text."""
    from core.equations import frame_caption, step_equation
    from core.theory import frame_histograms
    from core.trajectory_file import load_trajectory

    trajectory = load_trajectory(args.trajectory)
    steps = args.step if args.step else range(len(trajectory))
    bad = [step for step in steps if not 0 <= step < len(trajectory)]
    if bad:
        raise UserFacingError(f"--step {bad} is outside 0..{len(trajectory) - 1}")
    meta = trajectory.meta
    print(f"{meta['algorithm']} · {meta['model']} · seed {meta['seed']} · {len(trajectory)} frames")
    for step in steps:
        frame = trajectory[step]
        print(frame_caption(meta, frame, len(trajectory)))
        for line in step_equation(meta, frame):
            print(f"    {line}")
        statistics = [f"x_t mean {frame.x_t.mean():+.3f} std {frame.x_t.std():.3f}"]
        noise = frame.noise_field
        if noise and not frame.coeffs.get("final"):
            values = frame.image(noise)
            statistics.append(f"{noise} mean {values.mean():+.3f} std {values.std():.3f}")
        statistics.append(f"x_t theory: {frame_histograms(trajectory, frame).x_t_note}")
        print("    " + " · ".join(statistics))
    return 0


def run_models(args: argparse.Namespace) -> int:
    from core.checkpoints import read_sidecar

    models = bundled.bundled_models()
    if not models:
        print(f"no bundled models in {bundled.models_dir()}")
        return 0
    print(f"{'name':<20} {'architecture':<14} {'objective':<12} {'hidden':>6} {'epochs':>6}  file")
    for name, sidecar_path in models.items():
        sidecar = read_sidecar(sidecar_path)
        print(
            f"{name:<20} {sidecar['architecture']['name']:<14} {sidecar['objective']['name']:<12} "
            f"{sidecar['architecture']['hidden']:>6} {sidecar['epoch']:>6}  {sidecar_path.with_suffix('.safetensors')}"
        )
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from core.checkpoints import write_bundled_copy

    path = write_bundled_copy(args.checkpoint, args.name, args.dest or bundled.models_dir(), sampling_steps=args.steps, x0_clip=args.x0_clip)
    print(f"wrote {path} and {path.with_suffix('.safetensors').name}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from core.mnist_data import download_mnist

    directory = download_mnist(args.data_dir, report=lambda message: print(message, file=sys.stderr))
    print(f"MNIST is in {directory}")
    return 0


RUNNERS = {"train": run_train, "sample": run_sample, "experiment": run_experiment, "export": run_export, "inspect": run_inspect, "models": run_models,
           "download": run_download, "bundle": run_bundle}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return RUNNERS[args.command](args)
    except UserFacingError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError:
        print(f"{PROG}: error: out of GPU memory; use fewer samples, a smaller --batch-size, or --device cpu", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
