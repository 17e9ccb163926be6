"""Draw the Restorer app icon with Pillow: resources/icons/restorer.png (256 px) and restorer.ico.

A rounded blue square holding a stylised photo (sky, sun, hills) whose right half is crisp and
left half is faded, with a four-pointed sparkle: "restore this photo". Drawn at 4x and
downsampled for smooth edges. Re-run after changing it::

    .venv/bin/python packaging/make_icon.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 256
SS = 4  # supersampling
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def _lerp(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, ...]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _vertical_gradient(w: int, h: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    for y in range(h):
        draw.line([(0, y), (w, y)], fill=_lerp(top, bottom, y / max(1, h - 1)))
    return img


def draw_icon(size: int = SIZE) -> Image.Image:
    s = size * SS

    def p(v: float) -> int:  # design units (0..256) -> supersampled pixels
        return int(round(v * s / 256))

    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))

    # drop shadow + rounded square background
    shadow = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle([p(14), p(20), p(242), p(248)], radius=p(52), fill=(0, 0, 0, 90))
    icon.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(p(6))))
    bg = _vertical_gradient(s, s, (58, 134, 232), (34, 78, 170)).convert("RGBA")
    bg_mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(bg_mask).rounded_rectangle([p(12), p(12), p(244), p(244)], radius=p(52), fill=255)
    icon.paste(bg, (0, 0), bg_mask)

    # the photo: white frame, scene inside
    fx0, fy0, fx1, fy1 = p(44), p(60), p(212), p(196)
    ImageDraw.Draw(icon).rounded_rectangle([fx0, fy0, fx1, fy1], radius=p(10), fill=(250, 250, 252, 255))
    ix0, iy0, ix1, iy1 = fx0 + p(10), fy0 + p(10), fx1 - p(10), fy1 - p(10)
    iw, ih = ix1 - ix0, iy1 - iy0
    scene = _vertical_gradient(iw, ih, (140, 200, 255), (205, 232, 255)).convert("RGBA")
    sd = ImageDraw.Draw(scene)
    sd.ellipse([int(iw * 0.62), int(ih * 0.12), int(iw * 0.86), int(ih * 0.12) + int(iw * 0.24)],
               fill=(255, 196, 60, 255))
    sd.polygon([(0, ih), (0, int(ih * 0.62)), (int(iw * 0.30), int(ih * 0.38)), (int(iw * 0.62), ih)],
               fill=(60, 160, 95, 255))
    sd.polygon([(int(iw * 0.28), ih), (int(iw * 0.64), int(ih * 0.46)), (iw, int(ih * 0.72)), (iw, ih)],
               fill=(40, 130, 80, 255))
    # left half "old": faded sepia with a scratch; right half restored
    half = iw // 2
    old = scene.crop((0, 0, half, ih)).convert("L").convert("RGBA")
    sepia = Image.new("RGBA", old.size, (196, 160, 110, 255))
    old = Image.blend(old, sepia, 0.45)
    od = ImageDraw.Draw(old)
    od.line([(int(half * 0.15), int(ih * 0.10)), (int(half * 0.75), int(ih * 0.85))],
            fill=(250, 245, 235, 255), width=max(1, p(3)))
    scene.paste(old, (0, 0))
    ImageDraw.Draw(scene).line([(half, 0), (half, ih)], fill=(255, 255, 255, 255), width=max(1, p(3)))
    icon.alpha_composite(scene, (ix0, iy0))

    # sparkle: four-pointed star at the top right, with a small companion
    def sparkle(cx: float, cy: float, r: float, fill: tuple[int, int, int, int]) -> None:
        k = r * 0.22
        pts = [(cx, cy - r), (cx + k, cy - k), (cx + r, cy), (cx + k, cy + k),
               (cx, cy + r), (cx - k, cy + k), (cx - r, cy), (cx - k, cy - k)]
        ImageDraw.Draw(icon).polygon([(p(x), p(y)) for x, y in pts], fill=fill)

    glow = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse([p(170), p(22), p(240), p(92)], fill=(255, 240, 160, 110))
    icon.alpha_composite(glow.filter(ImageFilter.GaussianBlur(p(10))))
    sparkle(205, 57, 36, (255, 236, 120, 255))
    sparkle(205, 57, 20, (255, 255, 255, 255))
    sparkle(172, 36, 12, (255, 250, 210, 255))

    return icon.resize((size, size), Image.LANCZOS)


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=here.parent / "resources" / "icons")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    icon = draw_icon(SIZE)
    png = args.out / "restorer.png"
    ico = args.out / "restorer.ico"
    icon.save(png, optimize=True)
    icon.save(ico, sizes=ICO_SIZES)
    print(png)
    print(ico)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
