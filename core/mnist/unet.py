"""The CS180 part B UNet for 28x28 MNIST, as the course spec draws it.

One class covers the three variants so the wiring exists once:
- unconditional (the single-step denoiser): `UNet(hidden)`;
- time-conditioned: `UNet(hidden, time_conditioned=True)`; FCBlocks embed t in [0, 1]
  and are added at `unflatten` and `up1`;
- class-conditioned: `UNet(hidden, time_conditioned=True, num_classes=10)`; with c one-hot
  (all zeros = unconditional), `unflatten = c1 * unflatten + t1` and `up1 = c2 * up1 + t2`.

Shapes with hidden size D: 28x28xD -> 14x14xD -> 7x7x2D -> 1x1x2D -> 7x7x2D -> 14x14xD -> 28x28xD.
"""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURES = ("unconditional", "time", "class")


class Conv(nn.Sequential):
    """(1) 3x3 conv that keeps the resolution, then BatchNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.GELU())


class DownConv(nn.Sequential):
    """(2) Stride-2 conv: halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.BatchNorm2d(out_channels), nn.GELU())


class UpConv(nn.Sequential):
    """(3) Stride-2 transposed conv: doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1), nn.BatchNorm2d(out_channels), nn.GELU()
        )


class Flatten(nn.Sequential):
    """(4) 7x7 -> 1x1 by average pooling."""

    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    """(5) 1x1 -> 7x7 by a 7x7 transposed conv."""

    def __init__(self, channels: int):
        super().__init__(nn.ConvTranspose2d(channels, channels, 7, 7, 0), nn.BatchNorm2d(channels), nn.GELU())


def concat(*tensors: torch.Tensor) -> torch.Tensor:
    """(6) Channel-wise concatenation of tensors with the same spatial size."""
    return torch.cat(tensors, dim=1)


class ConvBlock(nn.Sequential):
    """(7) Conv followed by a second Conv: same shapes as Conv, more parameters."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(Conv(in_channels, out_channels), Conv(out_channels, out_channels))


class DownBlock(nn.Sequential):
    """(8) DownConv followed by a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(DownConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class UpBlock(nn.Sequential):
    """(9) UpConv followed by a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(UpConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class FCBlock(nn.Sequential):
    """Embeds a conditioning vector (t as [N, 1], or a one-hot class) into `out_features` channels."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(nn.Linear(in_features, out_features), nn.GELU(), nn.Linear(out_features, out_features))


class UNet(nn.Module):
    def __init__(self, hidden: int, in_channels: int = 1, time_conditioned: bool = False, num_classes: int = 0):
        super().__init__()
        if num_classes and not time_conditioned:
            raise ValueError("the class-conditioned UNet is also time-conditioned")
        self.hidden = hidden
        self.in_channels = in_channels
        self.time_conditioned = time_conditioned
        self.num_classes = num_classes
        D = hidden
        self.conv_in = ConvBlock(in_channels, D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.conv_out = ConvBlock(2 * D, D)
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)
        if time_conditioned:
            self.fc1_t = FCBlock(1, 2 * D)
            self.fc2_t = FCBlock(1, D)
        if num_classes:
            self.fc1_c = FCBlock(num_classes, 2 * D)
            self.fc2_c = FCBlock(num_classes, D)

    @property
    def architecture(self) -> str:
        if self.num_classes:
            return "class"
        return "time" if self.time_conditioned else "unconditional"

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """x: [N, C, 28, 28]; t: [N, 1] in [0, 1]; c: [N, num_classes] one-hot (zeros = unconditional)."""
        skip_in = self.conv_in(x)
        skip_down1 = self.down1(skip_in)
        skip_down2 = self.down2(skip_down1)
        unflat = self.unflatten(self.flatten(skip_down2))
        if self.time_conditioned:
            t1 = self.fc1_t(t)[:, :, None, None]
            t2 = self.fc2_t(t)[:, :, None, None]
            if self.num_classes:
                c1 = self.fc1_c(c)[:, :, None, None]
                unflat = c1 * unflat + t1
            else:
                unflat = unflat + t1
        up1 = self.up1(concat(unflat, skip_down2))
        if self.time_conditioned:
            if self.num_classes:
                c2 = self.fc2_c(c)[:, :, None, None]
                up1 = c2 * up1 + t2
            else:
                up1 = up1 + t2
        up2 = self.up2(concat(up1, skip_down1))
        return self.head(self.conv_out(concat(up2, skip_in)))


def build_unet(architecture: str, hidden: int, num_classes: int = 10) -> UNet:
    """Build a UNet from the names used in checkpoints: "unconditional", "time" or "class"."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    if hidden < 1:
        raise ValueError(f"hidden size must be positive, got {hidden}")
    return UNet(
        hidden,
        time_conditioned=architecture in ("time", "class"),
        num_classes=num_classes if architecture == "class" else 0,
    )
