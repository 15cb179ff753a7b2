import pytest
import torch

from diffusion_stepper.core.mnist.unet import FCBlock, UNet, build_unet

D = 8


@pytest.fixture(autouse=True)
def seeded_global_rng():
    """Layer initialisers and randn below use the global RNG: seed it, and restore it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def run_with_shapes(model, *args):
    shapes = {}
    hooks = [
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
        for name in ("conv_in", "down1", "down2", "flatten", "unflatten", "up1", "up2", "conv_out")
    ]
    output = model(*args)
    for hook in hooks:
        hook.remove()
    return output, shapes


def test_unconditional_unet_follows_the_course_diagram():
    model = UNet(D).eval()
    out, shapes = run_with_shapes(model, torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28)
    assert shapes == {
        "conv_in": (2, D, 28, 28),
        "down1": (2, D, 14, 14),
        "down2": (2, 2 * D, 7, 7),
        "flatten": (2, 2 * D, 1, 1),
        "unflatten": (2, 2 * D, 7, 7),
        "up1": (2, D, 14, 14),
        "up2": (2, D, 28, 28),
        "conv_out": (2, D, 28, 28),
    }
    layer_types = {type(m) for m in model.modules()}
    assert torch.nn.BatchNorm2d in layer_types and torch.nn.GELU in layer_types


def test_time_conditioning_changes_the_output():
    model = build_unet("time", D).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        early = model(x, torch.full((2, 1), 0.1))
        late = model(x, torch.full((2, 1), 0.9))
    assert not torch.allclose(early, late)
    assert isinstance(model.fc1_t, FCBlock) and model.fc1_t[0].in_features == 1
    assert model.fc1_t[-1].out_features == 2 * D and model.fc2_t[-1].out_features == D


def test_class_conditioning_modulates_unflatten_and_up1():
    model = build_unet("class", D).eval()
    x = torch.randn(3, 1, 28, 28)
    t = torch.full((3, 1), 0.5)
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 3, 9]), 10).float()
    with torch.no_grad():
        conditional = model(x, t, one_hot)
        unconditional = model(x, t, torch.zeros_like(one_hot))
    assert conditional.shape == (3, 1, 28, 28)
    assert not torch.allclose(conditional, unconditional)
    assert model.fc1_c[0].in_features == 10
    # With c = 0 the class blocks reduce to their biases, which still scale the features.
    _, shapes = run_with_shapes(model, x, t, torch.zeros_like(one_hot))
    assert shapes["unflatten"] == (3, 2 * D, 7, 7)


def test_bad_architecture_names():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_unet("transformer", D)
    with pytest.raises(ValueError):
        build_unet("time", 0)
    with pytest.raises(ValueError):
        UNet(D, time_conditioned=False, num_classes=10)
