"""IF in core: our stepped loop against diffusers' own pipelines, and every piece against its formula.

All on the tiny IF-architecture stages of core/deepfloyd_if/tiny.py, loaded through the same
`from_pretrained` path users take; nothing is downloaded.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from diffusion_stepper.core.deepfloyd_if.anagrams import make_view
from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings
from diffusion_stepper.core.deepfloyd_if.models import UNET_AND_SCHEDULERS_ONLY, load_if_stage
from diffusion_stepper.core.deepfloyd_if.sampling import (
    CLEAN_T,
    IFPredictor,
    chain_timesteps,
    gaussian_blur,
)
from diffusion_stepper.core.deepfloyd_if.tasks import COMPOSERS, TASKS, IFRequest
from diffusion_stepper.core.diffusion.rules.x0 import DynamicThreshold, LearnedRangeVariance
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.run_meta import VIEW_NAMES, RunMeta

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def stage1(tiny_if):
    return load_if_stage(1, model_dir=tiny_if.stage1_dir, device="cpu", allow_cpu=True)


@pytest.fixture(scope="module")
def stage2(tiny_if):
    return load_if_stage(2, model_dir=tiny_if.stage2_dir, device="cpu", allow_cpu=True)


@pytest.fixture(scope="module")
def table(tiny_if):
    return PromptEmbeddings.from_file(tiny_if.embeddings_file)


@pytest.fixture(scope="module")
def photo(stage1):
    """A smooth test image in [-1, 1] at stage I's size (an image, not noise)."""
    size = stage1.sample_size
    ramp = torch.linspace(-0.9, 0.9, size)
    return torch.stack(
        [ramp.view(1, -1).expand(size, size), ramp.view(-1, 1).expand(size, size), torch.outer(ramp, ramp)]
    ).unsqueeze(0)


def frames_of(request: IFRequest):
    run = request.start()
    frames = list(run.frames)
    assert len(frames) == run.num_frames
    return run, frames


def request(stage, table, **fields) -> IFRequest:
    return IFRequest(stage=stage, prompt_table=table, **fields)


def pipeline(cls, folder):
    pipe = cls.from_pretrained(folder, **UNET_AND_SCHEDULERS_ONLY)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_every_task_has_a_composer():
    assert sorted(COMPOSERS) == sorted(TASKS)


# --- exact against diffusers ----------------------------------------------------------------------


@pytest.mark.parametrize("steps, guidance, num", [(10, 7.0, 1), (7, 3.0, 2)])
def test_stage_one_equals_ifpipeline(tiny_if, stage1, table, steps, guidance, num):
    from diffusers import IFPipeline

    prompt = tiny_if.prompts[1]
    reference = pipeline(IFPipeline, tiny_if.stage1_dir)(
        prompt_embeds=table.get(prompt),
        negative_prompt_embeds=table.get(""),
        num_images_per_prompt=num,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=torch.Generator().manual_seed(5),
        output_type="pt",
    ).images
    run, frames = frames_of(request(stage1, table, prompt=[prompt], steps=steps, guidance=guidance, seed=5, num=num))
    assert len(frames) == steps + 1 and frames[-1].t == CLEAN_T
    assert (frames[-1].x_t - reference).abs().max() < 1e-4
    assert run.meta["params"]["timesteps"] == [int(t) for t in reference_timesteps(stage1, steps)]


def reference_timesteps(stage, steps):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(stage.scheduler.config)
    scheduler.set_timesteps(steps)
    return scheduler.timesteps


def test_stage_two_equals_superresolution_pipeline(tiny_if, stage1, stage2, table, tmp_path):
    from diffusers import IFSuperResolutionPipeline

    from diffusion_stepper.core.formats.trajectory_file import save_trajectory
    from diffusion_stepper.core.frames import Trajectory

    prompt = tiny_if.prompts[1]
    low_run, low_frames = frames_of(request(stage1, table, prompt=[prompt], steps=5, seed=1))
    low_res_file = save_trajectory(Trajectory(low_run.meta, low_frames), tmp_path / "stage1.npz")
    low_res = low_frames[-1].x_t
    reference = pipeline(IFSuperResolutionPipeline, tiny_if.stage2_dir)(
        image=low_res,
        prompt_embeds=table.get(prompt),
        negative_prompt_embeds=table.get(""),
        num_inference_steps=6,
        guidance_scale=4.0,
        noise_level=250,
        generator=torch.Generator().manual_seed(2),
        output_type="pt",
    ).images
    run, frames = frames_of(
        request(stage2, table, task="upscale", image=str(low_res_file), prompt=[prompt], steps=6, seed=2)
    )
    assert frames[-1].x_t.shape[-1] == stage2.sample_size
    assert (frames[-1].x_t - reference).abs().max() < 1e-4
    assert run.meta["params"]["guidance"] == 4.0 and "low_res" in frames[0].extras


# --- the pieces against their formulas ------------------------------------------------------------


def test_learned_variance_and_dynamic_threshold_match_the_scheduler(stage1):
    scheduler = stage1.scheduler
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(0)
    predicted = torch.rand(2, 3, 4, 4, generator=generator) * 2 - 1
    schedule = stage1.schedule
    for t, t_next in [(900, 800), (100, 0)]:
        expected = torch.exp(0.5 * scheduler._get_variance(t, predicted_variance=predicted))
        ours = LearnedRangeVariance().std(schedule.alpha_bar(t), schedule.alpha_bar(t_next), predicted)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)
    x0 = 3 * torch.randn(2, 3, 8, 8, generator=generator)
    thresholded, coeffs = DynamicThreshold(0.95, 1.5)(x0)
    torch.testing.assert_close(thresholded, scheduler._threshold_sample(x0))
    assert 1.0 <= coeffs["x0_threshold_s"] <= 1.5


def test_plain_x0_is_the_course_formula_and_each_step_the_posterior(stage1, table):
    _, frames = frames_of(request(stage1, table, steps=4, x0_clip="none", seed=3))
    schedule = stage1.schedule
    for frame in frames[:-1]:
        a = schedule.alpha_bar(int(frame.t))
        torch.testing.assert_close(frame.x0_hat, (frame.x_t - math.sqrt(1 - a) * frame.eps_hat) / math.sqrt(a))
        assert "x0_threshold_s" not in frame.coeffs
    guided = frames[0]
    torch.testing.assert_close(
        guided.eps_hat, guided.extras["eps_uncond"] + 7.0 * (guided.extras["eps_cond"] - guided.extras["eps_uncond"])
    )
    # the last real step lands on t = 0 and still adds learned noise; the step to the clean end does not
    assert frames[-3].coeffs["sigma"] > 0 and frames[-2].coeffs["sigma"] == 0 and frames[-2].coeffs["t_next"] == CLEAN_T


def test_dynamic_thresholding_is_the_default_and_changes_x0(stage1, table):
    _, dynamic = frames_of(request(stage1, table, steps=3, seed=3))
    _, plain = frames_of(request(stage1, table, steps=3, seed=3, x0_clip="none"))
    assert "x0_threshold_s" in dynamic[0].coeffs
    assert dynamic[0].x0_hat.abs().max() <= 1.0 + 1e-6 < plain[0].x0_hat.abs().max()


def test_stride_follows_the_course_and_the_same_seed_gives_the_same_frames(stage1, table):
    assert chain_timesteps(stage1, stride=30)[:3] == [990, 960, 930]
    assert chain_timesteps(stage1, stride=30)[-3:] == [30, 0, CLEAN_T]
    _, first = frames_of(request(stage1, table, stride=200, seed=11))
    _, again = frames_of(request(stage1, table, stride=200, seed=11))
    _, other = frames_of(request(stage1, table, stride=200, seed=12))
    assert [f.t for f in first] == [990, 790, 590, 390, 190, 0, CLEAN_T]
    assert all(torch.equal(a.x_t, b.x_t) and torch.equal(a.x0_hat, b.x0_hat) for a, b in zip(first, again))
    assert not torch.equal(first[-1].x_t, other[-1].x_t)


def test_forward_one_step_and_blur_follow_their_formulas(stage1, table, photo, tmp_path):
    path = save_png(photo, tmp_path / "photo.png")
    schedule = stage1.schedule
    _, forward = frames_of(request(stage1, table, task="forward", image=str(path)))
    assert [f.t for f in forward] == [250, 500, 750]
    image = forward[0].extras[CLEAN_EXTRA]
    torch.testing.assert_close(image, photo, atol=1 / 127.5, rtol=0)  # 8-bit PNG round trip
    for frame in forward:
        a = schedule.alpha_bar(int(frame.t))
        torch.testing.assert_close(frame.x_t, math.sqrt(a) * image + math.sqrt(1 - a) * frame.eps_hat)
    _, one_step = frames_of(request(stage1, table, task="one-step", image=str(path), t=[500]))
    frame = one_step[0]
    a = schedule.alpha_bar(500)
    expected_eps = IFPredictor(stage1)(frame.x_t, 500, table.get("a high quality photo"))[:, :3]
    torch.testing.assert_close(frame.eps_hat, expected_eps, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frame.x0_hat, (frame.x_t - math.sqrt(1 - a) * frame.eps_hat) / math.sqrt(a))
    torch.testing.assert_close(frame.extras["blurred"], gaussian_blur(frame.x_t, 5, 2.0))
    _, blur = frames_of(request(stage1, table, task="blur", image=str(path), t=[250], blur_kernel=3, blur_sigma=1.0))
    torch.testing.assert_close(blur[0].x0_hat, gaussian_blur(blur[0].x_t, 3, 1.0))


def test_gaussian_blur_is_a_normalised_gaussian():
    constant = torch.full((1, 3, 12, 12), 0.3)
    torch.testing.assert_close(gaussian_blur(constant, 5, 2.0), constant)
    impulse = torch.zeros(1, 1, 11, 11)
    impulse[0, 0, 5, 5] = 1.0
    response = gaussian_blur(impulse, 5, 1.0)[0, 0]
    g = torch.exp(-0.5 * torch.arange(-2.0, 3.0) ** 2)
    g = g / g.sum()
    torch.testing.assert_close(response[3:8, 3:8], torch.outer(g, g))
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(constant, 4, 1.0)


def test_sdedit_starts_from_the_forward_process_at_i_start(stage1, table, photo, tmp_path):
    path = save_png(photo, tmp_path / "photo.png")
    _, frames = frames_of(request(stage1, table, task="sdedit", image=str(path), stride=100, i_start=[3], seed=4))
    timesteps = chain_timesteps(stage1, stride=100)
    assert frames[0].t == timesteps[3] and len(frames) == len(timesteps) - 3
    image = frames[0].extras[CLEAN_EXTRA]
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(4))  # the run's first draw
    a = stage1.schedule.alpha_bar(timesteps[3])
    torch.testing.assert_close(frames[0].x_t, math.sqrt(a) * image + math.sqrt(1 - a) * noise)


def test_inpainting_keeps_the_known_region(stage1, table, photo, tmp_path):
    from PIL import Image

    path = save_png(photo, tmp_path / "photo.png")
    size = stage1.sample_size
    mask = torch.zeros(size, size)
    mask[4:12, 4:12] = 1
    Image.fromarray((mask.numpy() * 255).astype("uint8")).save(tmp_path / "mask.png")
    _, frames = frames_of(
        request(stage1, table, task="inpaint", image=str(path), mask=str(tmp_path / "mask.png"), stride=250)
    )
    known = frames[-1].extras[CLEAN_EXTRA]
    outside = (1 - mask).bool().expand(1, 3, size, size)
    assert torch.equal(frames[-1].x_t[outside], known[outside])  # exactly the original at the clean end
    assert not torch.allclose(frames[-1].x_t[~outside], known[~outside])
    assert torch.equal(frames[0].extras["mask"][0, 0], mask)
    schedule = stage1.schedule
    for frame in frames[1:-1]:  # outside the mask x_t sits at the forward process's noise level
        a = schedule.alpha_bar(int(frame.t))
        residual = (frame.x_t - math.sqrt(a) * known)[outside] / math.sqrt(1 - a)
        assert 0.7 < residual.std() < 1.3


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_every_view_is_orthogonal_and_inverts(name):
    view = make_view(name)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    viewed = view.apply(x)
    torch.testing.assert_close(viewed.norm(), x.norm())
    back = view.invert(viewed)
    torch.testing.assert_close(-back if view.negates else back, x)


def test_anagram_estimate_averages_the_views_mapped_back(stage1, table, tiny_if):
    prompts = tiny_if.prompts[1:3]
    run, frames = frames_of(
        request(stage1, table, task="anagram", prompt=prompts, views=["identity", "flip"], stride=300, seed=2)
    )
    frame = frames[1]
    predict = IFPredictor(stage1)
    uncond = table.get("")

    def guided(x, prompt):
        both = predict(torch.cat([x, x]), frame.t, torch.cat([table.get(prompt), uncond]))
        cond, unc = both[:1, :3], both[1:, :3]
        return unc + 7.0 * (cond - unc)

    first = guided(frame.x_t, prompts[0])
    second = torch.flip(guided(torch.flip(frame.x_t, dims=[2]), prompts[1]), dims=[2])
    torch.testing.assert_close(frame.extras["eps_view1"], first, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frame.extras["eps_view2"], second, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frame.eps_hat, (first + second) / 2, atol=1e-5, rtol=1e-4)
    assert run.meta["params"]["views"] == ["identity", "flip"]


def test_hybrid_estimate_is_lowpass_plus_highpass(stage1, table, tiny_if):
    _, frames = frames_of(
        request(stage1, table, task="hybrid", prompt=tiny_if.prompts[3:5], stride=300, blur_kernel=5, blur_sigma=1.5)
    )
    frame = frames[1]
    predict = IFPredictor(stage1)
    uncond = table.get("")

    def guided(prompt):
        both = predict(torch.cat([frame.x_t, frame.x_t]), frame.t, torch.cat([table.get(prompt), uncond]))
        return both[1:, :3] + 7.0 * (both[:1, :3] - both[1:, :3])

    low = gaussian_blur(guided(tiny_if.prompts[3]), 5, 1.5)
    high = guided(tiny_if.prompts[4]) - gaussian_blur(guided(tiny_if.prompts[4]), 5, 1.5)
    torch.testing.assert_close(frame.extras["eps_low"], low, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frame.extras["eps_high"], high, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frame.eps_hat, low + high, atol=1e-5, rtol=1e-4)
    far = frames[-1].extras["x0_afar"]
    assert far.shape[-1] == stage1.sample_size // 4
    torch.testing.assert_close(far[0, :, 0, 0], frames[-1].x0_hat[0, :, :4, :4].mean(dim=(1, 2)))


# --- loading and bad input ------------------------------------------------------------------------


def test_loading_refuses_the_cpu_without_the_flag_and_foreign_folders(tiny_if, tmp_path):
    with pytest.raises(UserFacingError, match="--allow-cpu"):
        load_if_stage(1, model_dir=tiny_if.stage1_dir, device="cpu")
    with pytest.raises(UserFacingError, match="not an IF stage folder"):
        load_if_stage(1, model_dir=tmp_path, device="cpu", allow_cpu=True)
    with pytest.raises(UserFacingError, match="sizes XL, L, M"):
        load_if_stage(1, size="S", device="cpu", allow_cpu=True)


def test_a_folder_saved_in_fp16_alone_loads_on_the_cpu_in_float32(stage1, tmp_path):
    """As a stage saved with save_pretrained(variant="fp16") holds it: no full-precision weights."""
    from diffusion_stepper.core.deepfloyd_if.tiny import save_if_stage

    folder = save_if_stage(1, copy.deepcopy(stage1.unet).half(), tmp_path / "fp16-only", variant="fp16")
    weight_files = [path.name for path in (folder / "unet").glob("*.safetensors")]
    assert weight_files == ["diffusion_pytorch_model.fp16.safetensors"]
    loaded = load_if_stage(1, model_dir=folder, device="cpu", allow_cpu=True)
    assert loaded.dtype == torch.float32 and next(loaded.unet.parameters()).dtype == torch.float32
    weight = next(loaded.unet.parameters())
    torch.testing.assert_close(weight, next(stage1.unet.parameters()).half().float())


def test_hub_weights_missing_offline_say_what_is_needed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(UserFacingError) as error:
        load_if_stage(1, device="cpu", allow_cpu=True)
    message = str(error.value)
    assert "DeepFloyd/IF-I-XL-v1.0" in message and "GB of disk" in message and "--model-dir" in message
    assert "\n" not in message


@pytest.mark.parametrize("token, expected", [(None, "hf auth login"), ("hf_x", "accept the license")])
def test_gated_repository_messages(monkeypatch, token, expected):
    from huggingface_hub.errors import GatedRepoError

    from diffusion_stepper.core.deepfloyd_if import models as if_models

    response = SimpleNamespace(headers={}, request=None)  # what the error reads from an HTTP response

    def refuse(*args, **kwargs):
        raise OSError("cannot load") from GatedRepoError("403 gated", response=response)

    monkeypatch.setattr("diffusers.IFPipeline.from_pretrained", refuse)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: token)
    with pytest.raises(UserFacingError, match=expected) as error:
        if_models.load_if_stage(1, device="cpu", allow_cpu=True)
    assert "https://huggingface.co/DeepFloyd/IF-I-XL-v1.0" in str(error.value)


def test_embeddings_files_are_checked_and_never_run_code(tmp_path, table):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("ran code",))

    malicious = tmp_path / "evil.pth"
    with open(malicious, "wb") as handle:
        pickle.dump({"a cat": Payload()}, handle)
    with pytest.raises(UserFacingError, match="not a prompt-embeddings file"):
        PromptEmbeddings.from_file(malicious)
    torch.save({"a cat": torch.zeros(5)}, tmp_path / "shape.pth")
    with pytest.raises(UserFacingError, match="expected \\[1, 77, 4096\\]"):
        PromptEmbeddings.from_file(tmp_path / "shape.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(UserFacingError, match="not a dict"):
        PromptEmbeddings.from_file(tmp_path / "list.pth")
    with pytest.raises(UserFacingError, match="no embedding for the prompt 'a unicorn'.*--t5"):
        table.get("a unicorn")
    with pytest.raises(UserFacingError, match="expects 4096"):
        table.check_width(4096)


def test_encoder_fills_the_cache_once(table):
    calls = []

    def encode(prompt):
        calls.append(prompt)
        return torch.ones(1, 77, 32)

    cached = PromptEmbeddings(dict(table.table), encoder=encode)
    cached.get("a unicorn")
    cached.get("a unicorn")
    assert calls == ["a unicorn"]


def save_png(image: torch.Tensor, path):
    from PIL import Image

    array = ((image[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    Image.fromarray(array).save(path)
    return path


def test_t5_encodes_prompts_as_ifpipeline_does(tmp_path, tiny_if):
    from diffusers import IFPipeline
    from transformers import AutoTokenizer, T5EncoderModel

    from diffusion_stepper.core.deepfloyd_if.embeddings import t5_encoder
    from diffusion_stepper.core.deepfloyd_if.tiny import build_tiny_t5

    folder = build_tiny_t5(tmp_path / "t5")
    encode = t5_encoder(str(folder), "cpu")
    reference = IFPipeline.from_pretrained(
        tiny_if.stage1_dir,
        **{
            **UNET_AND_SCHEDULERS_ONLY,
            "tokenizer": AutoTokenizer.from_pretrained(folder, subfolder="tokenizer"),
            "text_encoder": T5EncoderModel.from_pretrained(folder, subfolder="text_encoder"),
        },
    )
    for prompt in ["A photo of a Cat ", ""]:
        expected, _ = reference.encode_prompt(prompt, do_classifier_free_guidance=False, clean_caption=False)
        ours = encode(prompt)
        assert ours.shape == (1, 77, 32)
        torch.testing.assert_close(ours, expected)
    with pytest.raises(UserFacingError, match="could not load IF|not on this disk"):
        t5_encoder(str(tmp_path / "missing"), "cpu")


def test_denoising_runs_report_psnr_against_the_original(stage1, table, photo, tmp_path):
    from diffusion_stepper.core.diffusion.equations import step_equation

    path = save_png(photo, tmp_path / "photo.png")
    run, frames = frames_of(request(stage1, table, task="iterative", image=str(path), stride=200, i_start=[2]))
    original = frames[0].extras[CLEAN_EXTRA]
    for frame in frames:
        mse = float(((frame.x0_hat.clamp(-1, 1) - original) ** 2).mean())
        assert frame.coeffs["psnr_db"] == pytest.approx(10 * math.log10(4.0 / mse))
    assert f"PSNR(x̂₀, original) = {frames[-1].coeffs['psnr_db']:.2f} dB" in step_equation(run.run_meta, frames[-1])
    _, forward = frames_of(request(stage1, table, task="forward", image=str(path)))
    assert "psnr_db" not in forward[0].coeffs  # x̂₀ is the original itself there


def test_anagram_frames_show_the_estimate_through_each_view(stage1, table, tiny_if):
    _, frames = frames_of(
        request(stage1, table, task="anagram", prompt=tiny_if.prompts[1:3], views=["identity", "rot180"], stride=300)
    )
    for frame in (frames[1], frames[-1]):
        torch.testing.assert_close(frame.extras["x0_view1"], frame.x0_hat)
        torch.testing.assert_close(frame.extras["x0_view2"], torch.rot90(frame.x0_hat, 2, dims=[2, 3]))


def test_a_branch_continues_from_a_step_with_new_settings(stage1, table, tiny_if):
    from diffusion_stepper.core.deepfloyd_if.tasks import BranchPoint

    run, frames = frames_of(request(stage1, table, prompt=[tiny_if.prompts[1]], stride=200, seed=1, num=2))
    point = BranchPoint.from_run(run.run_meta, frames, 2, source="first")
    assert point.timesteps == [590, 390, 190, 0, CLEAN_T]
    same_run, same = frames_of(request(stage1, table, prompt=[tiny_if.prompts[1]], stride=200, seed=1, branch=point))
    assert torch.equal(same[0].x_t, frames[2].x_t) and len(same) == 5
    assert same_run.meta["params"]["branched_from"] == {"run": "first", "step": 2, "t": 590}
    # the same model estimate at the branch point, then a new prompt steers it elsewhere
    torch.testing.assert_close(same[0].eps_hat, frames[2].eps_hat)
    _, other = frames_of(request(stage1, table, prompt=[tiny_if.prompts[2]], stride=200, seed=1, branch=point))
    assert not torch.allclose(other[-1].x_t, same[-1].x_t)
    with pytest.raises(UserFacingError, match="nothing left to denoise"):
        BranchPoint.from_run(run.run_meta, frames, len(frames) - 1)
    with pytest.raises(UserFacingError, match="only IF denoising runs"):
        BranchPoint.from_run(RunMeta.of({"params": {}}), frames, 0)


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_the_anagram_turn_starts_at_the_image_and_ends_on_the_view(name):
    from diffusion_stepper.core.deepfloyd_if.anagrams import view_turn

    ramp = torch.linspace(-1, 1, 32)
    image = torch.stack(
        [ramp.view(1, -1).expand(32, 32), ramp.view(-1, 1).expand(32, 32), torch.outer(ramp, ramp)]
    ).unsqueeze(0)
    turn = view_turn(image, name, 41)
    target = make_view(name).apply(image)
    assert turn.shape == (41, 1, 3, 32, 32)
    torch.testing.assert_close(turn[0], image, atol=1e-5, rtol=0)
    assert torch.equal(turn[-1], target)
    if name != "identity":  # it moves towards the view, never away from it first
        assert (turn[-2] - target).abs().mean() < (turn[-2] - image).abs().mean()


def test_weights_present_knows_folders_and_the_hub_cache(tiny_if, tmp_path, monkeypatch):
    from diffusion_stepper.core.deepfloyd_if.models import weights_present

    assert weights_present(str(tiny_if.stage1_dir)) and not weights_present(str(tmp_path))
    cache = tmp_path / "hub-cache"
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert not weights_present("DeepFloyd/IF-I-XL-v1.0")
    # the cache's layout: refs/main names a snapshot that holds the repo's files
    repo = cache / "models--DeepFloyd--IF-I-XL-v1.0"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    (snapshot / "unet").mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    assert not weights_present("DeepFloyd/IF-I-XL-v1.0")  # no UNet config yet
    (snapshot / "unet" / "config.json").write_text("{}")
    assert weights_present("DeepFloyd/IF-I-XL-v1.0")


def test_theory_compares_x_t_only_where_the_forward_process_drew_it(stage1, table, photo, tmp_path):
    """SDEdit's first frame is the forward process of the image; its later frames come from
    denoising steps, where the forward marginal is not what x_t follows."""
    from diffusion_stepper.core.diffusion.theory import frame_histograms
    from diffusion_stepper.core.frames import Trajectory

    path = save_png(photo, tmp_path / "photo.png")
    run, frames = frames_of(request(stage1, table, task="sdedit", image=str(path), stride=100, i_start=[3]))
    trajectory = Trajectory(run.meta, frames, None)
    start, later = frame_histograms(trajectory, frames[0]), frame_histograms(trajectory, frames[2])
    assert start.x_t_theory is not None and "forward marginal" in start.x_t_note
    assert later.x_t_theory is None and "denoising steps" in later.x_t_note
    forward_run, forward_frames = frames_of(request(stage1, table, task="forward", image=str(path), t=[250, 750]))
    forward = Trajectory(forward_run.meta, forward_frames, None)
    assert all(frame_histograms(forward, frame).x_t_theory is not None for frame in forward_frames)
    sampled_run, sampled = frames_of(request(stage1, table, task="sample", stride=300))
    start = frame_histograms(Trajectory(sampled_run.meta, sampled, None), sampled[0])
    assert start.x_t_theory is not None and "x_T ~ N(0, 1)" in start.x_t_note  # IF starts from pure noise too
