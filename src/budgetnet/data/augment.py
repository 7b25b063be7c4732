"""The paper's five augmentations (section 2.1) and the online flip+crop, batched over uint8 tensors.

Every function takes a whole batch uint8 (B, 3, 32, 32) on any device plus per-image parameters,
and returns uint8 of the same shape. Parameters are drawn separately (`sample_params`) from a
torch.Generator on the CPU, so a seed gives the same parameters whatever device does the work,
and tests can check the parameters and the pixels independently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F

PAD = 4  # px of zero padding on each side before the random crop (copy 2 and online)
SHIFT = 2  # px: the "shift" augmentation's largest translation, with reflected borders (as airbench)
RESIZE = 36  # px: copy 3 scales 32 -> 36 (a factor of 1.125) before a random 32x32 crop


@dataclass(frozen=True)
class AugmentRecipe:
    """The ranges of the random parameters; recorded in every store manifest."""

    flip_p: float = 0.5  # probability of the random horizontal flip before copies 2-5
    pad: int = PAD  # px, copy 2: translation within [-pad, pad] on each axis
    resize: int = RESIZE  # px, copy 3: side length after resizing, before the 32x32 crop
    max_angle: float = 90.0  # degrees, copy 4: angle uniform in [-max_angle, max_angle]
    jitter: tuple[float, float] = (0.5, 1.5)  # copy 5: brightness/contrast/saturation factor range
    max_hue: float = 0.1  # turns of the colour wheel, copy 5: hue shift uniform in [-max_hue, max_hue]

    def to_dict(self) -> dict:
        """JSON-ready form for the manifest."""
        return {**asdict(self), "jitter": list(self.jitter), "jitter_order": JITTER_ORDER, "fill": 0}


# fixed, not shuffled per image: one order keeps the op vectorised and the store easy to reason about
JITTER_ORDER = ["brightness", "contrast", "saturation", "hue"]


@dataclass(frozen=True)
class AugmentParams:
    """Per-image random parameters for copies 2-5 of N training images (CPU tensors)."""

    flips: torch.Tensor  # bool (4, N): the p=0.5 flip applied before copies 2, 3, 4, 5
    pad_offsets: torch.Tensor  # int64 (N, 2): crop corner (y, x) in [0, 2*pad] of the padded image
    resize_offsets: torch.Tensor  # int64 (N, 2): crop corner (y, x) in [0, resize-32]
    angles: torch.Tensor  # float32 (N,): degrees, counter-clockwise
    factors: torch.Tensor  # float32 (N, 3): brightness, contrast, saturation
    hue_shifts: torch.Tensor  # float32 (N,): turns

    def take(self, start: int, stop: int) -> AugmentParams:
        """The parameters of images start..stop-1."""
        return AugmentParams(
            self.flips[:, start:stop], self.pad_offsets[start:stop], self.resize_offsets[start:stop],
            self.angles[start:stop], self.factors[start:stop], self.hue_shifts[start:stop],
        )


def sample_params(n: int, generator: torch.Generator, recipe: AugmentRecipe = AugmentRecipe()) -> AugmentParams:
    """Draw every random parameter for n images, in a fixed order, from a CPU generator."""
    g = generator
    low, high = recipe.jitter
    return AugmentParams(
        flips=torch.rand(4, n, generator=g) < recipe.flip_p,
        pad_offsets=torch.randint(0, 2 * recipe.pad + 1, (n, 2), generator=g),
        resize_offsets=torch.randint(0, recipe.resize - 32 + 1, (n, 2), generator=g),
        angles=(torch.rand(n, generator=g) * 2 - 1) * recipe.max_angle,
        factors=low + torch.rand(n, 3, generator=g) * (high - low),
        hue_shifts=(torch.rand(n, generator=g) * 2 - 1) * recipe.max_hue,
    )


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0, 255).add_(0.5).to(torch.uint8)  # round half up; the clamp keeps the cast in range


def hflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right (copy 1)."""
    return images.flip(-1)


def random_hflip(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose entry in bool (B,) `flips` is set."""
    return torch.where(flips.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def crop(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None = None, size: int = 32) -> torch.Tensor:
    """A size x size window per image at offsets (B, 2) = (y, x), of the image mirrored where `flips` is set."""
    b, c, h, w = images.shape
    offsets = offsets.to(images.device)
    steps = torch.arange(size, device=images.device)
    rows = offsets[:, 0:1] + steps  # (B, size)
    cols = offsets[:, 1:2] + steps
    if flips is not None:  # column j of the mirrored image is column w-1-j of the original: the flip is free
        cols = torch.where(flips.to(images.device).view(-1, 1), w - 1 - cols, cols)
    # one gather over flat pixel indices is several times faster than 4-D advanced indexing
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, size * size).expand(b, c, size * size)
    return images.reshape(b, c, h * w).gather(2, index).view(b, c, size, size)


def pad_crop(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None = None,
             pad: int = PAD) -> torch.Tensor:
    """Zero-pad `pad` px per side, crop 32x32 at offsets: a translation by offsets - pad (copy 2)."""
    return crop(F.pad(images, (pad, pad, pad, pad)), offsets, flips, images.shape[-1])


def resize_crop(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None = None,
                size: int = RESIZE) -> torch.Tensor:
    """Bilinear (antialiased) resize to size x size, then crop 32x32 at offsets (copy 3)."""
    if images.device.type == "cpu":
        # torch has a fast uint8 path for antialiased bilinear on CPU; channels_last selects it. The crop's
        # gather reads the channels_last result in place: converting it back would cost more than the crop
        big = F.interpolate(images.contiguous(memory_format=torch.channels_last), size=(size, size),
                            mode="bilinear", antialias=True, align_corners=False)
    else:
        big = _to_uint8(F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                                      align_corners=False))
    return crop(big, offsets, flips, images.shape[-1])  # resizing commutes with the mirror


def _affine_grid(matrix: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid(matrix, (B, C, h, w), align_corners=False), as one (2B, 3) x (3, h*w) matrix product."""
    # the same base points as affine_grid (linspace scaled by (n-1)/n); affine_grid runs B tiny (h*w, 3) x (3, 2)
    # products and was a fifth of the rotation's time; one large product gives the same floats, several times faster
    xs = torch.linspace(-1, 1, w, device=matrix.device) * (w - 1) / w
    ys = torch.linspace(-1, 1, h, device=matrix.device) * (h - 1) / h
    base = torch.stack([xs.expand(h, w), ys.view(h, 1).expand(h, w), torch.ones(h, w, device=matrix.device)])
    return torch.matmul(matrix, base.view(3, h * w)).transpose(1, 2).view(-1, h, w, 2)


def rotate(images: torch.Tensor, angles: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate each image about its centre by angles (B,) degrees, bilinear, zeros outside (copy 4)."""
    theta = angles.to(images.device, torch.float32) * (math.pi / 180)
    cos, sin = theta.cos(), theta.sin()
    zero = torch.zeros_like(cos)
    # affine_grid maps output coordinates to input ones, so this is a counter-clockwise rotation
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    if flips is not None:  # negating the input x coordinate mirrors the input before rotating it
        sign = 1 - 2 * flips.to(images.device, torch.float32)
        matrix[:, 0, :] *= sign.view(-1, 1)
    grid = _affine_grid(matrix, *images.shape[-2:])
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.add_(0.5).to(torch.uint8)  # bilinear weights are convex: values stay within 0-255


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def color_matrix(factors: torch.Tensor, hue_shifts: torch.Tensor) -> torch.Tensor:
    """Per-image 3x3 RGB matrices for saturation (factors[:, 2]) then a hue rotation (turns)."""
    n = len(factors)
    luma = torch.tensor(LUMA, dtype=torch.float64)
    s = factors[:, 2].double().view(n, 1, 1)
    saturation = s * torch.eye(3, dtype=torch.float64) + (1 - s) * luma.view(1, 1, 3)  # blend with grey
    angle = hue_shifts.double() * (2 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(n, 3, 3, dtype=torch.float64)
    rot[:, 0, 0] = 1  # luma is kept; the chroma plane (I, Q) turns, in the sense that takes red towards yellow
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, sin, -sin, cos
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    return torch.linalg.inv(to_yiq) @ rot @ to_yiq @ saturation


def color_jitter(images: torch.Tensor, factors: torch.Tensor, hue_shifts: torch.Tensor,
                 flips: torch.Tensor | None = None) -> torch.Tensor:
    """Brightness, contrast, saturation (factors (B, 3)) and hue (turns), as one colour map per image (copy 5).

    Brightness scales, contrast blends with the image's mean grey, saturation blends with the
    greyscale image (torchvision's definitions) and hue turns the colour about the grey axis
    (a rotation of the YIQ chroma plane). All four are linear, so they fold into one affine map
    with a single clamp at the end, instead of torchvision's clamp after each step.
    """
    b, c, h, w = images.shape
    factors = factors.to(torch.float64).cpu()
    bright, contrast = factors[:, 0].view(b, 1, 1), factors[:, 1].view(b, 1, 1)
    x = images.reshape(b, c, h * w).float()
    # sums of at most 2^24 / 255 uint8 values are exact in float32, so the mean grey is exact and does not
    # depend on pixel order: the map is the same for an image and its mirror, and the flip can come last
    channel_means = x.sum(2).double().cpu() / (h * w)
    grey_mean = (channel_means @ torch.tensor(LUMA, dtype=torch.float64)).view(b, 1, 1)
    colour = color_matrix(factors, hue_shifts.cpu())  # maps grey to grey: each row sums to 1
    matrix = (bright * contrast) * colour
    offset = (1 - contrast) * bright * grey_mean * colour.sum(2, keepdim=True)
    out = torch.baddbmm(offset.to(images.device, torch.float32), matrix.to(images.device, torch.float32), x)
    out = _to_uint8(out).view(b, c, h, w)
    if flips is not None:  # index_copy_ of the flipped half is several times cheaper than torch.where on all
        picked = flips.to(images.device).nonzero().squeeze(1)
        out.index_copy_(0, picked, out.index_select(0, picked).flip(-1))
    return out


COPIES = 6  # the original plus the paper's five augmented copies
COPY_NAMES = ("original", "flip", "pad-crop", "resize-crop", "rotate", "color-jitter")
# images per pass through copies 2-5 on CPU: their uint8/float temporaries (~30 KB an image) then stay within L2,
# and malloc hands the same few MB back each pass instead of returning them to the kernel and faulting in fresh
# zeroed pages every time (page faults were a third of the build time with 1,024-image passes)
CPU_BLOCK = 128


def augment_copy(copy: int, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Copy `copy` (0 original, 1 flipped, 2-5 random flip then the paper's augmentation) of a batch."""
    if copy == 0:
        return images.clone()
    if copy == 1:
        return hflip(images)
    if not 2 <= copy < COPIES:
        raise ValueError(f"copy must be 0-5, got {copy}")
    n = len(images)
    if images.device.type != "cpu" or n <= CPU_BLOCK:  # on an accelerator launches, not caches, are the cost
        return _augment_block(copy, images, params)
    out = torch.empty_like(images)
    for start in range(0, n, CPU_BLOCK):  # every operation is per image, so blocks do not change a byte
        stop = min(start + CPU_BLOCK, n)
        out[start:stop] = _augment_block(copy, images[start:stop], params.take(start, stop))
    return out


def _augment_block(copy: int, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    if copy == 2:
        return pad_crop(images, params.pad_offsets, params.flips[0])
    if copy == 3:
        return resize_crop(images, params.resize_offsets, params.flips[1])
    if copy == 4:
        return rotate(images, params.angles, params.flips[2])
    return color_jitter(images, params.factors, params.hue_shifts, params.flips[3])


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and tensor.device.type == "cpu":
        # pinned, non-blocking copies: a plain .to() would wait for every queued kernel each step
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def online_augment(images: torch.Tensor, generator: torch.Generator, index: torch.Tensor | None = None,
                   epoch: int = 0) -> torch.Tensor:
    """Random horizontal flip plus zero-pad-4 random 32x32 crop, fresh per image, on the images' device.

    `index` and `epoch` are unused; they give every online augmentation one signature.
    """
    n = len(images)
    flips = torch.rand(n, generator=generator, device=generator.device) < 0.5
    offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator, device=generator.device)
    return pad_crop(images, _to(offsets, images.device), _to(flips, images.device))


def alternating_flips(index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Whether each image (by its row `index`) is mirrored in `epoch`: a fixed coin per image, inverted every
    other epoch, so any two consecutive epochs show every image both ways (airbench's alternating flip)."""
    coin = ((index.to(torch.int64) * 0x9E3779B1) >> 15) & 1  # a multiplicative hash: fixed, balanced per row
    return (coin ^ (epoch % 2)).bool()


def shift_augment(images: torch.Tensor, generator: torch.Generator, index: torch.Tensor | None = None,
                  epoch: int = 0, shift: int = SHIFT) -> torch.Tensor:
    """Alternating flips plus a random translation of up to `shift` px per axis with reflected borders."""
    n = len(images)
    index = torch.arange(n) if index is None else index
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator, device=generator.device)
    padded = F.pad(images, (shift, shift, shift, shift), mode="reflect") if shift else images
    return crop(padded, _to(offsets, images.device), alternating_flips(index, epoch).to(images.device),
                images.shape[-1])


def cutout(images: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Each image with a size x size square set to the batch's mean colour (0 once normalised), centred on a
    random pixel and clipped at the borders (DeVries & Taylor's cutout, as in Page's ResNet-9)."""
    b, _, h, w = images.shape
    centres = _to(torch.stack([torch.randint(0, h, (b,), generator=generator, device=generator.device),
                               torch.randint(0, w, (b,), generator=generator, device=generator.device)], 1),
                  images.device)
    top = centres[:, 0:1] - size // 2  # (B, 1)
    left = centres[:, 1:2] - size // 2
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    inside_rows = (rows >= top) & (rows < top + size)  # (B, h)
    inside_cols = (cols >= left) & (cols < left + size)
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # (B, 1, h, w)
    mean = images.float().mean(dim=(0, 2, 3)).round().to(images.dtype).view(1, -1, 1, 1)
    return torch.where(mask, mean, images)


def online_augmentation(mode: str, shift: int = SHIFT, cutout_size: int = 0) -> Callable | None:
    """The per-batch augmentation for Recipe.augment `mode` (None for "offline" and "none"), with the shift
    mode's largest translation and, where `cutout_size` > 0, cutout after it (its draws come last, so
    runs without it draw exactly what they drew before cutout existed)."""
    base = {"online": online_augment, "shift": partial(shift_augment, shift=shift)}.get(mode)
    if base is None or cutout_size == 0:
        return base

    def augment(images: torch.Tensor, generator: torch.Generator, index: torch.Tensor | None = None,
                epoch: int = 0) -> torch.Tensor:
        return cutout(base(images, generator, index, epoch), generator, cutout_size)

    return augment
