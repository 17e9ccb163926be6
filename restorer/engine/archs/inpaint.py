"""DeepFill-style free-form inpainting networks (pure nn.Modules, no Qt, no I/O).

long: the generator, its contextual attention (with its inference subset) and the critics are one
design and are trained, exported and loaded together; split they would only import each other.

`InpaintGenerator` follows DeepFill v1 (Yu et al., "Generative Image Inpainting with Contextual
Attention", 2018) with the gated convolutions of DeepFill v2 ("Free-Form Image Inpainting with
Gated Convolution", 2019) as an option:

* input: the image in [0, 1] (mapped to [-1, 1] inside, hole pixels zeroed so the network never
  sees them), a ones channel and the mask (1 = hole): 5 channels;
* coarse stage: an encoder to 1/4 resolution, four dilated convolutions (rates 2, 4, 8, 16) and
  a decoder back to full resolution;
* refine stage, fed the coarse result pasted into the hole: two encoders to 1/4 resolution, one
  with dilated convolutions (hallucination), one with :class:`ContextualAttention` (copying
  features from the known background); their outputs are concatenated and decoded to RGB.

``forward(image, mask) -> (coarse, refined)``, both in [0, 1] at the input's size; `inpaint`
pastes the refined result into the hole. Height and width must be multiples of 8 (two stride-2
stages, then the attention's own 2x downsampling); pipelines pad their windows to that.

Departures from the papers, for fast training: the gate is light-weight (depth-separable, see
`GatedConv2d`), and layers whose input and output widths match are residual with He-initialised
weights, so the ~35-layer generator starts with a healthy signal (the plain DeepFill stack starts
with activations ~1e-2 and, measured here, learns markedly slower in the first thousand steps).

`GlobalCritic` and `LocalCritic` are the WGAN critics (no sigmoid) used for training: the global
one sees the whole image, the local one a fixed-size crop around the hole.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------------------- building blocks


class GatedConv2d(nn.Module):
    """Gated convolution: ``ELU(conv(x)) * sigmoid(gate(x))``; a plain conv -> ELU when not `gated`.

    The gate is the light-weight, depth-separable kind (HiFill, Yi et al. 2020): a depthwise
    kxk convolution over the same (dilated) neighbourhood as the feature, then a 1x1 convolution
    to one gate per output channel. It keeps DeepFill v2's learned, per-channel soft masking at
    about 1/9 of the cost of a full gate convolution. `activation=False` leaves the feature
    linear (the RGB output layers). `residual=True` (same channels, stride 1) adds the input:
    without it a stack of ~30 gated layers starts with a vanishing signal and trains slowly.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 gated: bool = True, activation: bool = True, residual: bool = False) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.gated = gated
        self.activation = activation
        self.residual = residual and cin == cout and stride == 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation)
        if gated:
            self.gate = nn.Sequential(
                nn.Conv2d(cin, cin, kernel, stride, pad, dilation=dilation, groups=cin, bias=False),
                nn.Conv2d(cin, cout, 1))
        # He initialisation for the ELU feature (x2 for the ~0.5 gate at start); residual
        # branches start small so each block begins near the identity
        gain = (2.0 if gated else 1.0) * (0.5 if self.residual else 1.0)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        with torch.no_grad():
            self.conv.weight.mul_(gain if activation else 0.5)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if not torch.is_grad_enabled():  # inference: the same arithmetic in place (fewer full-size passes)
            if self.activation:
                y = F.elu(y, inplace=True)
            if self.gated:
                y = y.mul_(self.gate(x).sigmoid_())
            return y.add_(x) if self.residual and y.dtype == x.dtype else (x + y if self.residual else y)
        if self.activation:
            y = F.elu(y)
        if self.gated:
            y = y * torch.sigmoid(self.gate(x))
        return x + y if self.residual else y


class UpConv(nn.Module):
    """Nearest 2x upsampling followed by a (gated) 3x3 convolution (DeepFill's `gen_deconv`)."""

    def __init__(self, cin: int, cout: int, gated: bool = True) -> None:
        super().__init__()
        self.conv = GatedConv2d(cin, cout, 3, gated=gated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ----------------------------------------------------------------------------- contextual attention


class ContextualAttention(nn.Module):
    """Fill the hole's features with a soft copy of background patches (DeepFill v1).

    For foreground `f`, background `b` (the same map in the generator) and the hole `mask`
    (B,1,H,W at the features' resolution, 1 = hole):

    1. `b` and `f` are downsampled by `rate` (average pooling) for matching; 3x3 background
       patches (`F.unfold`, stride `stride`) are L2-normalised;
    2. every foreground position is scored against every background patch (the convolution of
       `f` with the normalised patches, done here as one batched matrix product);
    3. patches touching the hole are masked out;
    4. scores are propagated along the diagonal of the (background, foreground) score matrix
       with an identity kernel of size `fuse_k`, horizontally then vertically (the "fuse" step:
       neighbouring foreground pixels prefer neighbouring background patches);
    5. a softmax over background patches, scaled by `softmax_scale`;
    6. the output is the attention-weighted sum of the raw full-resolution background patches
       (2*rate wide, stride `rate`), i.e. ``conv_transpose2d`` done as a matrix product and
       ``F.fold``, divided by the number of patches overlapping each pixel.

    H and W of `f` must be multiples of `rate`. Batched over samples (no Python loop).

    Inference (eval mode, one sample, stride 1) scores only the foreground positions whose output
    reaches the hole dilated by `inference_margin` feature px (at least the receptive field of the
    layers after the attention: 6 px at 1/4 resolution in `InpaintGenerator`, two 3x3 convs of
    `attn_post`, two of `refine_dec` at 1/4 and the decoder's +-2; 7 leaves one px of room).
    The fuse step's neighbours are gathered exactly, so inside that region the output equals the
    full computation (to float rounding); outside it the output is only partly summed, which the
    caller never uses: pixels outside the hole are pasted from the input. A window whose hole
    covers most of it runs the full computation.
    """

    inference_margin = 7

    def __init__(self, ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                 softmax_scale: float = 10.0, fuse: bool = True) -> None:
        super().__init__()
        if ksize % 2 != 1 or fuse_k % 2 != 1:
            raise ValueError("ksize and fuse_k must be odd")
        self.ksize = ksize
        self.stride = stride
        self.rate = rate
        self.fuse_k = fuse_k
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.register_buffer("fuse_weight", torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k), persistent=False)

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, C, H, W = f.shape
        r, k, s = self.rate, self.ksize, self.stride
        if b.shape != f.shape:
            raise ValueError(f"foreground {tuple(f.shape)} and background {tuple(b.shape)} differ")
        if H % r or W % r:
            raise ValueError(f"contextual attention needs sizes divisible by {r}, got {H}x{W}")
        if mask is None:
            mask = torch.zeros(B, 1, H, W, device=f.device, dtype=f.dtype)
        h, w = H // r, W // r
        if not self.training and B == 1 and s == 1 and r > 1 and self.fuse and self.fuse_k == 3:
            needed = self._needed_positions(mask, h, w)
            if needed is not None:
                return self._forward_subset(f, b, mask, needed)

        # raw background patches (2r x 2r, stride r) at full resolution, for reconstruction
        rk = 2 * r
        raw = F.unfold(b, rk, padding=r // 2 if r > 1 else 0, stride=r * s) if r > 1 else \
            F.unfold(b, k, padding=k // 2, stride=s)  # (B, C*rk*rk, L)

        # matching at low resolution
        fl = F.avg_pool2d(f, r) if r > 1 else f
        bl = F.avg_pool2d(b, r) if r > 1 else b
        pad = k // 2
        bp = F.unfold(bl, k, padding=pad, stride=s)  # (B, C*k*k, L)
        L = bp.shape[-1]
        bp = bp / bp.float().pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-4).to(bp.dtype)
        fp = F.unfold(fl, k, padding=pad)  # (B, C*k*k, P), P = h*w
        scores = torch.bmm(bp.transpose(1, 2), fp).float()  # (B, L, P)

        # valid background patches: no hole pixel under the raw patch nor the matching patch
        ml = F.max_pool2d(mask.float(), r) if r > 1 else mask.float()
        reach = max(k, 3)
        ml = F.max_pool2d(ml, reach, stride=s, padding=reach // 2)
        valid = (ml.flatten(1) == 0).to(scores.dtype)  # (B, L)
        if valid.shape[1] != L:  # stride > 1 with odd sizes: align the counts
            valid = valid[:, :L]
        valid = valid.unsqueeze(2)  # (B, L, 1)

        if self.fuse:
            lh, lw = (h + s - 1) // s, (w + s - 1) // s
            kf = self.fuse_k
            wgt = self.fuse_weight.to(scores.dtype)
            x = F.conv2d(scores.view(B, 1, L, h * w), wgt, padding=kf // 2)
            # transpose both the background and the foreground grids, fuse again, transpose back
            x = x.view(B, lh, lw, h, w).permute(0, 2, 1, 4, 3).reshape(B, 1, L, h * w)
            x = F.conv2d(x, wgt, padding=kf // 2)
            scores = x.view(B, lw, lh, w, h).permute(0, 2, 1, 4, 3).reshape(B, L, h * w)

        scores = scores * self.softmax_scale
        scores = scores.masked_fill(valid == 0, -1e4)
        attn = torch.softmax(scores, dim=1) * valid  # (B, L, P); all-zero when nothing is valid

        # reconstruction: every foreground position pastes its weighted raw patch
        if r > 1:
            out = torch.bmm(raw, attn.to(raw.dtype))  # (B, C*rk*rk, P)
            out = F.fold(out, (H, W), rk, padding=r // 2, stride=r)
            ones = torch.ones(1, rk * rk, h * w, device=f.device, dtype=out.dtype)
            count = F.fold(ones, (H, W), rk, padding=r // 2, stride=r)
        else:
            out = torch.bmm(raw, attn.to(raw.dtype))
            out = F.fold(out, (H, W), k, padding=k // 2)
            ones = torch.ones(1, k * k, H * W, device=f.device, dtype=out.dtype)
            count = F.fold(ones, (H, W), k, padding=k // 2)
        return out / count


    # ---- inference on the positions that matter (see the class docstring)
    def _needed_positions(self, mask: torch.Tensor, h: int, w: int) -> Optional[torch.Tensor]:
        """Row-major indices of the (h, w) positions whose raw patch touches the dilated hole."""
        m = self.inference_margin
        grown = F.max_pool2d(mask.float(), 2 * m + 1, stride=1, padding=m)
        r = self.rate
        # a position's raw patch (2r px, stride r, padding r//2) covers feature px [r*i - r//2, r*i - r//2 + 2r)
        pad = r // 2
        touched = F.max_pool2d(F.pad(grown, (pad, 2 * r, pad, 2 * r)), 2 * r, stride=r)[..., :h, :w]
        idx = torch.nonzero(touched.flatten() > 0).flatten()
        if idx.numel() == 0 or idx.numel() > 0.6 * h * w:
            return None
        return idx

    def _forward_subset(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor,
                        needed: torch.Tensor) -> torch.Tensor:
        _, C, H, W = f.shape
        r, k = self.rate, self.ksize
        h, w = H // r, W // r
        P = h * w
        dev = f.device
        rk = 2 * r
        raw = F.unfold(b, rk, padding=r // 2, stride=r)[0]  # (C*rk*rk, L)
        fl, bl = F.avg_pool2d(f, r), F.avg_pool2d(b, r)
        bp = F.unfold(bl, k, padding=k // 2)[0]  # (C*k*k, L), L = P
        bp = bp / bp.float().pow(2).sum(0, keepdim=True).sqrt().clamp_min(1e-4).to(bp.dtype)
        fp = F.unfold(fl, k, padding=k // 2)[0]  # (C*k*k, P)

        # flattened-index steps of the fuse: +-1 in row-major order, and +-1 in column-major order
        grid = torch.arange(P, device=dev)
        cm_pos = (grid % w) * h + grid // w  # column-major position of each row-major index
        from_cm = torch.empty_like(cm_pos)
        from_cm[cm_pos] = grid  # row-major index at each column-major position

        def col_step(q: torch.Tensor, e: int) -> tuple[torch.Tensor, torch.Tensor]:
            pos = cm_pos[q] + e
            ok = (pos >= 0) & (pos < P)
            return from_cm[pos.clamp(0, P - 1)], ok

        def row_step(q: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
            t = q + d
            ok = (t >= 0) & (t < P)
            return t.clamp(0, P - 1), ok

        steps = (-1, 0, 1)
        q1 = torch.unique(torch.cat([col_step(needed, e)[0][col_step(needed, e)[1]] for e in steps]))
        q2 = torch.unique(torch.cat([row_step(q1, d)[0][row_step(q1, d)[1]] for d in steps]))
        lookup2 = torch.full((P,), -1, dtype=torch.long, device=dev)
        lookup2[q2] = torch.arange(q2.numel(), device=dev)
        lookup1 = torch.full((P,), -1, dtype=torch.long, device=dev)
        lookup1[q1] = torch.arange(q1.numel(), device=dev)

        # raw scores (L, |q2|), with one zero column at the end for steps past the grid's ends
        s2 = torch.zeros(P, q2.numel() + 1, dtype=torch.float32, device=dev)
        s2[:, :-1] = bp.t() @ fp[:, q2]

        def add_shifted(acc: torch.Tensor, x: torch.Tensor, d: int) -> None:  # acc[l] += x[l + d], zero outside
            if d == 0:
                acc += x
            elif d > 0:
                acc[:-d] += x[d:]
            else:
                acc[-d:] += x[:d]

        # horizontal fuse: x1[l, q] = sum_d s[l + d, q + d] (row-major steps, zero past the ends)
        x1 = torch.zeros(P, q1.numel() + 1, dtype=torch.float32, device=dev)
        for d in steps:
            t, ok = row_step(q1, d)
            add_shifted(x1[:, :-1], s2.index_select(1, torch.where(ok, lookup2[t], q2.numel())), d)
        del s2
        # vertical fuse: y[l, p] = sum_e x1[l (+) e, p (+) e] with (+) a column-major step
        x1_cm = x1.index_select(0, from_cm)  # rows in column-major order of the background grid
        del x1
        y_cm = torch.zeros(P, needed.numel(), dtype=torch.float32, device=dev)
        for e in steps:
            t, ok = col_step(needed, e)
            add_shifted(y_cm, x1_cm.index_select(1, torch.where(ok, lookup1[t], q1.numel())), e)
        del x1_cm
        scores = y_cm.index_select(0, cm_pos)  # back to row-major background order: (L, |needed|)

        ml = F.max_pool2d(mask.float(), r)
        reach = max(k, 3)
        ml = F.max_pool2d(ml, reach, stride=1, padding=reach // 2)
        valid = (ml.flatten() == 0).to(scores.dtype).unsqueeze(1)  # (L, 1)
        scores = (scores * self.softmax_scale).masked_fill(valid == 0, -1e4)
        attn = torch.softmax(scores, dim=0) * valid
        cols = raw @ attn.to(raw.dtype)  # (C*rk*rk, |needed|)
        full = torch.zeros(raw.shape[0], P, dtype=cols.dtype, device=dev)
        full[:, needed] = cols
        out = F.fold(full[None], (H, W), rk, padding=r // 2, stride=r)
        ones = torch.ones(1, rk * rk, P, device=dev, dtype=out.dtype)
        count = F.fold(ones, (H, W), rk, padding=r // 2, stride=r)
        return out / count


# ----------------------------------------------------------------------------- generator


class FourierResBlock(nn.Module):
    """A residual block with a global receptive field (the spectral transform of LaMa's Fast
    Fourier Convolution): 1x1 conv + ReLU on the real and imaginary parts of the 2-D FFT, back to
    space, a 1x1 projection, added to the input. The projection starts at zero, so a new block is
    the identity and a trained generator gives exactly its old output until training moves it.
    The transform runs in float32 (FFTs of non-power-of-two sizes have no bf16 kernels).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spectral = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.kaiming_normal_(self.spectral.weight, nonlinearity="relu")
        nn.init.zeros_(self.spectral.bias)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            f = torch.fft.rfft2(x.float(), norm="ortho")
            f = torch.cat([f.real, f.imag], 1)
            f = F.relu(self.spectral(f))
            re, im = f.chunk(2, 1)
            y = torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")
            y = self.proj(y)
        return x + y.to(x.dtype)


class InpaintGenerator(nn.Module):
    """Two-stage coarse/refine inpainting generator with contextual attention.

    `base_channels` (c) sets the widths c, 2c, 4c of the 1, 1/2, 1/4 resolution stages; with
    the defaults (c=32, gated) the network has about 3.4M parameters (3.0M without gates).
    Sizes must be multiples of 8.

    Inference (eval mode, one sample, `crop_to_hole`): only the hole's output is used, so only what
    it depends on is computed. The decoders and the attention's post-convolutions are local: they
    run on the hole's bounding box at 1/4 resolution grown by `decoder_margin` px (their receptive
    field is 6 px at 1/4 resolution: two 3x3 convs at 1/4, two at 1/2, three at full). The coarse
    path and the hallucination branch (dilations up to 16 at 1/4: a receptive field of about 34 px
    there) run on the window's part within `wide_margin` of that box; the attention's encoder and the
    attention itself see the whole window (the background to copy from). Inside the hole the output
    equals the full computation (to float rounding); outside the box both outputs are the input
    image (hole zeroed). Training always runs the full computation.
    """

    decoder_margin = 8  # 1/4-resolution px around the hole's box (>= the decoders' receptive field)
    wide_margin = 36  # 1/4-resolution px: receptive field of the dilated branches (coarse path, hallucination)

    def __init__(self, base_channels: int = 32, gated: bool = True, fourier_blocks: int = 0) -> None:
        super().__init__()
        c = int(base_channels)
        if c < 4:
            raise ValueError("base_channels must be at least 4")
        self.base_channels = c
        self.gated = bool(gated)
        self.crop_to_hole = True  # eval, one sample: decoders run on the hole's box (not a weight: off for A/B)

        def conv(cin: int, cout: int, k: int = 3, stride: int = 1, dil: int = 1, act: bool = True) -> GatedConv2d:
            return GatedConv2d(cin, cout, k, stride, dil, gated=self.gated, activation=act, residual=True)

        c2, c4 = 2 * c, 4 * c
        cin = 5  # image (3) + ones + mask
        # coarse network (layers with equal input and output widths are residual)
        self.coarse_enc = nn.Sequential(
            conv(cin, c, 5), conv(c, c2, 3, 2), conv(c2, c2), conv(c2, c4, 3, 2), conv(c4, c4))
        self.coarse_mid = nn.Sequential(
            conv(c4, c4, dil=2), conv(c4, c4, dil=4), conv(c4, c4, dil=8), conv(c4, c4, dil=16), conv(c4, c4))
        self.coarse_dec = nn.Sequential(
            UpConv(c4, c2, self.gated), conv(c2, c2), UpConv(c2, c, self.gated), conv(c, c // 2),
            conv(c // 2, 3, act=False))
        # refine: hallucination branch (dilated convolutions)
        self.conv_branch = nn.Sequential(
            conv(cin, c, 5), conv(c, c, 3, 2), conv(c, c2), conv(c2, c2, 3, 2), conv(c2, c4),
            conv(c4, c4, dil=2), conv(c4, c4, dil=4), conv(c4, c4, dil=8), conv(c4, c4, dil=16))
        # refine: attention branch
        self.attn_enc = nn.Sequential(
            conv(cin, c, 5), conv(c, c, 3, 2), conv(c, c2), conv(c2, c4, 3, 2), conv(c4, c4))
        self.attention = ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0)
        self.attn_post = nn.Sequential(conv(c4, c4), conv(c4, c4))
        # optional global receptive field (zero-initialised residual blocks: a model trained without
        # them loads and gives identical output; see FourierResBlock)
        self.fourier_blocks = int(fourier_blocks)
        self.coarse_fourier = nn.Sequential(*[FourierResBlock(c4) for _ in range(self.fourier_blocks)])
        self.refine_fourier = nn.Sequential(*[FourierResBlock(c4) for _ in range(self.fourier_blocks)])
        # refine: merge and decode
        self.refine_dec = nn.Sequential(
            conv(2 * c4, c4), conv(c4, c4), UpConv(c4, c2, self.gated), conv(c2, c2),
            UpConv(c2, c, self.gated), conv(c, c // 2), conv(c // 2, 3, act=False))

    @staticmethod
    def _check(image: torch.Tensor, mask: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:] or mask.shape[0] != image.shape[0]:
            raise ValueError(f"mask must be (B, 1, H, W) matching the image, got {tuple(mask.shape)}")
        h, w = image.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"inpainting needs height and width divisible by 8, got {h}x{w} (pad the input)")

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(image, mask)
        mask = mask.to(image.dtype)
        valid = 1.0 - mask
        x = (image * 2.0 - 1.0) * valid  # [-1, 1]; hole pixels never seen
        ones = torch.ones_like(mask)

        mask_q = F.max_pool2d(mask, 4)  # the hole at 1/4 resolution: any hole pixel counts
        box = self._hole_box(mask_q)  # eval, one sample: only the hole's neighbourhood is computed
        if box is not None:
            return self._forward_box(x, valid, ones, mask, mask_q, box)

        deep = self.coarse_fourier(self.coarse_mid(self.coarse_enc(torch.cat([x, ones, mask], 1))))
        coarse = torch.tanh(self.coarse_dec(deep))

        x2 = coarse * mask + x * valid
        inp2 = torch.cat([x2, ones, mask], 1)
        hal = self.refine_fourier(self.conv_branch(inp2))
        feat = self.attn_enc(inp2)
        feat = self.attention(feat, feat, mask_q)
        feat = self.attn_post(feat)
        refined = torch.tanh(self.refine_dec(torch.cat([hal, feat], 1)))
        return (coarse + 1.0) * 0.5, (refined + 1.0) * 0.5

    def _forward_box(self, x: torch.Tensor, valid: torch.Tensor, ones: torch.Tensor, mask: torch.Tensor,
                     mask_q: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` computing only what the hole's box needs (see the class docstring)."""
        y0, x0, y1, x1 = box

        def coarse_branch(t: torch.Tensor) -> torch.Tensor:
            return self.coarse_fourier(self.coarse_mid(self.coarse_enc(t)))

        def hallucination(t: torch.Tensor) -> torch.Tensor:
            return self.refine_fourier(self.conv_branch(t))

        coarse = self._paste(self.coarse_dec(self._on_box(coarse_branch, torch.cat([x, ones, mask], 1), box)), box, x)
        x2 = coarse * mask + x * valid
        inp2 = torch.cat([x2, ones, mask], 1)
        hal = self._on_box(hallucination, inp2, box)
        feat = self.attn_enc(inp2)  # the attention's background is the whole window
        feat = self.attention(feat, feat, mask_q)[..., y0:y1, x0:x1]
        feat = self.attn_post(feat)
        refined = self._paste(self.refine_dec(torch.cat([hal, feat], 1)), box, x)
        return (coarse + 1.0) * 0.5, (refined + 1.0) * 0.5

    # ---- inference on the hole's neighbourhood (see the class docstring)
    def _hole_box(self, mask_q: torch.Tensor) -> Optional[tuple[int, int, int, int]]:
        """(y0, x0, y1, x1) at 1/4 resolution: the hole's bounding box grown by `decoder_margin`,
        or None (full computation) when training, batched, off, or when the box covers most of the map."""
        if self.training or not getattr(self, "crop_to_hole", True) or mask_q.shape[0] != 1:
            return None
        hq, wq = mask_q.shape[-2:]
        plane = mask_q[0, 0] > 0
        rows = torch.nonzero(plane.any(1)).flatten()
        cols = torch.nonzero(plane.any(0)).flatten()
        if rows.numel() == 0:
            return None
        m = self.decoder_margin
        y0, y1 = max(0, int(rows[0]) - m), min(hq, int(rows[-1]) + 1 + m)
        x0, x1 = max(0, int(cols[0]) - m), min(wq, int(cols[-1]) + 1 + m)
        if (y1 - y0) * (x1 - x0) > 0.7 * hq * wq:
            return None
        return y0, x0, y1, x1

    def _on_box(self, branch, inp: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """``branch(inp)`` (full resolution in, 1/4 out) cut to `box`. Without global (Fourier) blocks
        it runs only on the part of the window within `wide_margin` quarter px of the box (its
        receptive field; the part starts on the 4 px grid, so every stride lines up with the window's)."""
        y0, x0, y1, x1 = box
        if self.fourier_blocks:
            return branch(inp)[..., y0:y1, x0:x1]
        hq, wq = inp.shape[-2] // 4, inp.shape[-1] // 4
        r = self.wide_margin
        ry0, rx0, ry1, rx1 = max(0, y0 - r), max(0, x0 - r), min(hq, y1 + r), min(wq, x1 + r)
        out = branch(inp[..., 4 * ry0:4 * ry1, 4 * rx0:4 * rx1])
        return out[..., y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]

    @staticmethod
    def _paste(raw: torch.Tensor, box: tuple[int, int, int, int], like: torch.Tensor) -> torch.Tensor:
        """``tanh(raw)`` (a decoder's output on the box) pasted into a copy of `like` (the [-1, 1] input)."""
        y0, x0, y1, x1 = box
        out = like.clone()
        out[..., 4 * y0:4 * y1, 4 * x0:4 * x1] = torch.tanh(raw)
        return out

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The refined output pasted into the hole: ``refined * mask + image * (1 - mask)``."""
        mask = mask.to(image.dtype)
        _, refined = self(image, mask)
        return (refined.to(image.dtype) * mask + image * (1.0 - mask)).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- critics


def _maybe_sn(module: nn.Module, spectral_norm: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module


class _Critic(nn.Module):
    """Strided 5x5 convolutions + LeakyReLU, then a linear score (WGAN: no sigmoid, no norm layers).

    Any input size works: the last feature map is average-pooled to 4x4 before the linear layer.
    """

    def __init__(self, widths: tuple[int, ...], in_channels: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in widths:
            layers += [_maybe_sn(nn.Conv2d(cin, cout, 5, 2, 2), spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.linear = _maybe_sn(nn.Linear(cin * 16, 1), spectral_norm)

    def forward(self, x: torch.Tensor, features: bool = False):
        """(B,) scores; with `features=True` also the activations after each stage (for feature matching)."""
        feats = []
        y = x
        for layer in self.features:
            y = layer(y)
            if features and isinstance(layer, nn.LeakyReLU):
                feats.append(y)
        if y.shape[-2:] != (4, 4):
            y = F.adaptive_avg_pool2d(y, 4)
        score = self.linear(y.flatten(1)).squeeze(1)
        return (score, feats) if features else score


class GlobalCritic(_Critic):
    """WGAN critic on the whole image (widths c, 2c, 4c, 4c as in DeepFill v1). Returns (B,)."""

    def __init__(self, base_channels: int = 64, in_channels: int = 3, spectral_norm: bool = False) -> None:
        c = base_channels
        super().__init__((c, 2 * c, 4 * c, 4 * c), in_channels, spectral_norm)


class LocalCritic(_Critic):
    """WGAN critic on a fixed-size crop around the hole (widths c, 2c, 4c, 8c). Returns (B,)."""

    def __init__(self, base_channels: int = 64, in_channels: int = 3, spectral_norm: bool = False) -> None:
        c = base_channels
        super().__init__((c, 2 * c, 4 * c, 8 * c), in_channels, spectral_norm)
