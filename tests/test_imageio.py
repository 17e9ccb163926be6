"""Tests of restorer.engine.imageio. Every image is generated in tmp_path with Pillow."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from restorer.engine import imageio
from restorer.engine.errors import ImageReadError, InputError
from restorer.engine.imageio import (
    MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    ImageData,
    from_float01,
    is_image_file,
    load_image,
    load_mask,
    resize_plane,
    save_image,
    to_float01,
)

ORIENTATION = 0x0112


def _gradient(w: int = 32, h: int = 24) -> np.ndarray:
    """Deterministic (h, w, 3) uint8 test pattern with distinct corners."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=-1).astype(np.uint8)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------- loading: modes


def test_exif_orientation_applied_and_reset(tmp_path: Path) -> None:
    src = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"
    Image.fromarray(_gradient(40, 20)).save(src, exif=exif.tobytes(), quality=95)

    img = load_image(src)
    assert img.rgb.shape == (40, 20, 3)
    assert img.size == (20, 40)
    assert img.source_format == "JPEG"
    assert img.exif is not None
    loaded_exif = Image.Exif()
    loaded_exif.load(img.exif)
    assert loaded_exif[ORIENTATION] == 1
    assert loaded_exif[0x010F] == "TestCam"

    for name in ("out.jpg", "out.png", "out.webp", "out.tif"):
        out = save_image(img, tmp_path / name)
        with Image.open(out) as saved:
            assert saved.size == (20, 40)
            saved_exif = saved.getexif()
            assert saved_exif.get(ORIENTATION) == 1, name
            assert saved_exif.get(0x010F) == "TestCam", name
        # Re-loading the saved file must not rotate it again.
        assert load_image(out).size == (20, 40)


def test_rgba_png_round_trip_keeps_alpha(tmp_path: Path) -> None:
    rgb = _gradient()
    alpha = np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))
    src = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(src)

    img = load_image(src)
    assert img.alpha is not None and img.bit_depth == 8
    np.testing.assert_array_equal(img.rgb, rgb)
    np.testing.assert_array_equal(img.alpha, alpha)

    out = save_image(img, tmp_path / "b.png")
    again = load_image(out)
    np.testing.assert_array_equal(again.rgb, rgb)
    np.testing.assert_array_equal(again.alpha, alpha)


def test_webp_keeps_alpha(tmp_path: Path) -> None:
    alpha = np.zeros((24, 32), np.uint8)
    alpha[:, 16:] = 255
    img = ImageData(rgb=_gradient(), alpha=alpha)
    again = load_image(save_image(img, tmp_path / "a.webp", quality=90))
    assert again.alpha is not None
    assert again.alpha[:, :14].max() < 16 and again.alpha[:, 18:].min() > 240


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.new("P", (8, 4))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    pal.paste(1, (4, 0, 8, 4))
    pal.info["transparency"] = 0
    src = tmp_path / "p.png"
    pal.save(src, transparency=0)

    img = load_image(src)
    assert img.alpha is not None
    assert (img.alpha[:, :4] == 0).all() and (img.alpha[:, 4:] == 255).all()
    assert tuple(img.rgb[0, 6]) == (0, 255, 0)


def test_palette_without_transparency_is_rgb(tmp_path: Path) -> None:
    src = tmp_path / "p.bmp"
    Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE).save(src)
    img = load_image(src)
    assert img.alpha is None and img.rgb.shape == (24, 32, 3)


def test_16bit_gray_png_stays_16bit(tmp_path: Path) -> None:
    plane = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 85 % 65536).astype(np.uint16)
    src = tmp_path / "g16.png"
    Image.fromarray(plane).save(src)

    img = load_image(src)
    assert img.rgb.dtype == np.uint16 and img.bit_depth == 16
    assert img.rgb.shape == (24, 32, 3)
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[..., c], plane)

    for name in ("out.png", "out.tif"):
        out = save_image(img, tmp_path / name)
        with Image.open(out) as saved:
            assert saved.mode in ("I;16", "I;16B", "I")
            np.testing.assert_array_equal(np.asarray(saved).astype(np.uint16), plane)
        np.testing.assert_array_equal(load_image(out).rgb[..., 0], plane)


def test_16bit_colour_png_falls_back_to_8bit_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rgb16 = _gradient().astype(np.uint16) * 257
    with caplog.at_level(logging.WARNING, logger="restorer.engine.imageio"):
        out = save_image(ImageData(rgb=rgb16, alpha=None), tmp_path / "c.png")
    assert "8 bits" in caplog.text
    again = load_image(out)
    assert again.rgb.dtype == np.uint8
    np.testing.assert_array_equal(again.rgb, _gradient())


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_loads_as_three_channels(tmp_path: Path, mode: str) -> None:
    gray = Image.fromarray(_gradient()[..., 0]).convert(mode)
    src = tmp_path / "g.png"
    gray.save(src)
    img = load_image(src)
    assert img.rgb.shape == (24, 32, 3) and img.rgb.dtype == np.uint8
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 1])
    assert np.array_equal(img.rgb[..., 1], img.rgb[..., 2])
    np.testing.assert_array_equal(img.rgb[..., 0], np.asarray(gray.convert("L")))


def test_gray_with_alpha(tmp_path: Path) -> None:
    src = tmp_path / "la.png"
    la = np.dstack([np.full((4, 5), 100, np.uint8), np.full((4, 5), 50, np.uint8)])
    Image.fromarray(la).save(src)  # mode LA
    img = load_image(src)
    assert img.rgb.shape == (4, 5, 3) and (img.rgb == 100).all()
    assert img.alpha is not None and (img.alpha == 50).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 8), (0, 0, 0, 0))  # white
    cmyk.paste((255, 0, 0, 0), (8, 0, 16, 8))  # cyan
    src = tmp_path / "cmyk.jpg"
    cmyk.save(src, quality=95)

    img = load_image(src)
    assert img.rgb.shape == (8, 16, 3) and img.rgb.dtype == np.uint8
    assert (img.rgb[:, :6] > 240).all()
    r, g, b = (int(v) for v in img.rgb[4, 12])
    assert r < 30 and g > 220 and b > 220
    assert img.icc_profile is None  # no CMYK profile may be attached to RGB pixels


def test_icc_profile_kept_on_save(tmp_path: Path) -> None:
    icc = _srgb_icc()
    src = tmp_path / "icc.png"
    Image.fromarray(_gradient()).save(src, icc_profile=icc)
    img = load_image(src)
    assert img.icc_profile == icc
    for name in ("o.jpg", "o.png", "o.webp", "o.tif"):
        with Image.open(save_image(img, tmp_path / name)) as saved:
            assert saved.info.get("icc_profile") == icc, name


def test_16bit_gray_tiff_loads_as_uint16(tmp_path: Path) -> None:
    plane = np.full((6, 7), 40000, np.uint16)
    src = tmp_path / "g.tif"
    Image.fromarray(plane).save(src)
    img = load_image(src)
    assert img.rgb.dtype == np.uint16 and (img.rgb == 40000).all()


def test_jpeg_drops_alpha_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    img = ImageData(rgb=_gradient(), alpha=np.full((24, 32), 128, np.uint8))
    with caplog.at_level(logging.WARNING, logger="restorer.engine.imageio"):
        out = save_image(img, tmp_path / "x.jpg")
    assert "alpha" in caplog.text
    with Image.open(out) as saved:
        assert saved.mode == "RGB"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".bmp"])
def test_every_format_round_trips(tmp_path: Path, suffix: str) -> None:
    img = ImageData(rgb=_gradient(), alpha=None)
    out = save_image(img, tmp_path / f"x{suffix}", quality=95)
    again = load_image(out)
    assert again.size == (32, 24)
    lossless = suffix in (".png", ".tif", ".bmp")
    diff = np.abs(again.rgb.astype(int) - img.rgb.astype(int)).max()
    assert diff == 0 if lossless else diff < 40


# ---------------------------------------------------------------- loading: errors


def _assert_names_file(exc: pytest.ExceptionInfo[ImageReadError], path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message and "\n" not in message
    assert exc.value.exit_code == 2


def test_truncated_jpeg(tmp_path: Path) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    src = tmp_path / "t.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src, quality=95)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as exc:
        load_image(src)
    _assert_names_file(exc, src)


def test_truncated_png(tmp_path: Path) -> None:
    src = tmp_path / "t.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as exc:
        load_image(src)
    _assert_names_file(exc, src)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    src = tmp_path / "notes.jpg"
    src.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="not an image") as exc:
        load_image(src)
    _assert_names_file(exc, src)


def test_missing_file_and_directory_and_empty(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist") as exc:
        load_image(tmp_path / "nope.png")
    _assert_names_file(exc, tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(empty)


def test_decompression_bomb_limit(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    Image.new("RGB", (100, 50)).save(src)
    with pytest.raises(ImageReadError, match="5,000 pixels.*limit of 4,999") as exc:
        load_image(src, max_pixels=4_999)
    _assert_names_file(exc, src)
    assert load_image(src, max_pixels=5_000).size == (100, 50)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard restored


def test_limit_above_pillow_default_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's global guard (here artificially tiny) must not override our limit.
    src = tmp_path / "p.png"
    Image.new("RGB", (100, 100)).save(src)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    assert load_image(src).size == (100, 100)
    assert Image.MAX_IMAGE_PIXELS == 10
    # the default is Pillow's own hard limit, not a looser one (issue 17 item 8)
    assert MAX_PIXELS == 2 * 89_478_485


# ------------------------------------------------------------------------- saving


def test_atomic_save_no_temp_files_and_no_overwrite(tmp_path: Path) -> None:
    img = ImageData(rgb=_gradient(), alpha=None)
    out_dir = tmp_path / "new" / "dir"
    target = out_dir / "out.png"
    assert save_image(img, target) == target
    assert _files(out_dir) == ["out.png"]

    with pytest.raises(InputError, match="exists; use --overwrite"):
        save_image(ImageData(rgb=np.zeros((2, 2, 3), np.uint8), alpha=None), target)
    assert load_image(target).size == (32, 24)  # untouched
    assert _files(out_dir) == ["out.png"]

    small = ImageData(rgb=np.zeros((2, 2, 3), np.uint8), alpha=None)
    save_image(small, target, overwrite=True)
    assert load_image(target).size == (2, 2)
    assert _files(out_dir) == ["out.png"]


def test_save_refuses_protected_input(tmp_path: Path) -> None:
    original = tmp_path / "photo.png"
    Image.fromarray(_gradient()).save(original)
    img = load_image(original)
    alias = tmp_path / "." / "photo.png"
    with pytest.raises(InputError, match="input image"):
        save_image(img, alias, protect=[original])
    # Even a file that does not exist yet is refused when it is a protected path.
    planned = tmp_path / "planned.png"
    with pytest.raises(InputError, match="input image"):
        save_image(img, planned, protect=[planned])
    assert save_image(img, original, protect=[original], overwrite=True) == original


def test_failed_save_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(Exception, match="the disk is full") as exc:
        save_image(ImageData(rgb=_gradient(), alpha=None), tmp_path / "x.png")
    assert not isinstance(exc.value, OSError)
    assert _files(tmp_path) == []


def test_save_format_errors(tmp_path: Path) -> None:
    img = ImageData(rgb=_gradient(), alpha=None)
    with pytest.raises(InputError, match="unsupported"):
        save_image(img, tmp_path / "x.gif")
    with pytest.raises(InputError, match="quality"):
        save_image(img, tmp_path / "x.jpg", quality=0)
    out = save_image(img, tmp_path / "x.data", format="png")
    with Image.open(out) as saved:
        assert saved.format == "PNG"


# -------------------------------------------------------------------------- masks


def test_mask_white_is_true(tmp_path: Path) -> None:
    arr = np.zeros((10, 20), np.uint8)
    arr[2:5, 3:9] = 255
    arr[6, 0] = 127  # below threshold
    arr[7, 0] = 128  # at threshold
    src = tmp_path / "m.png"
    Image.fromarray(arr).save(src)
    mask = load_mask(src, size=(20, 10))
    assert mask.dtype == bool and mask.shape == (10, 20)
    expected = arr >= 128
    np.testing.assert_array_equal(mask, expected)


def test_mask_from_colour_image(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 255, 255)
    rgb[0, 1] = (255, 0, 0)  # red: luma 76 -> False
    src = tmp_path / "m.jpg"
    Image.fromarray(rgb).save(src, quality=100)
    mask = load_mask(src)
    assert mask[0, 0] and not mask[0, 1] and not mask[3, 3]


def test_mask_from_alpha_when_colour_uniform(tmp_path: Path) -> None:
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., :3] = (255, 0, 0)  # uniform red brush colour
    rgba[1:3, 1:3, 3] = 255
    src = tmp_path / "strokes.png"
    Image.fromarray(rgba).save(src)
    mask = load_mask(src)
    np.testing.assert_array_equal(mask, rgba[..., 3] >= 128)


def test_mask_size_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "m.png"
    Image.new("L", (100, 80)).save(src)
    with pytest.raises(InputError, match="is 100x80 but image is 200x160"):
        load_mask(src, size=(200, 160))


def test_mask_errors_are_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError):
        load_mask(tmp_path / "missing.png")


# ------------------------------------------------------------------- pixel helpers


def test_float_round_trip_uint8_and_uint16() -> None:
    a8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    f8 = to_float01(a8)
    assert f8.dtype == np.float32 and f8.min() == 0.0 and f8.max() == 1.0
    np.testing.assert_array_equal(from_float01(f8, np.uint8), a8)

    a16 = np.arange(0, 65536, 7, dtype=np.uint16)
    a16 = np.append(a16, np.uint16(65535))
    f16 = to_float01(a16)
    assert f16.dtype == np.float32 and f16.max() == 1.0
    back = from_float01(f16, np.uint16)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, a16)


def test_from_float01_clips_and_rounds() -> None:
    out = from_float01(np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan], np.float32), np.uint8)
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 0])


def test_resize_plane_keeps_dtype() -> None:
    p16 = np.full((10, 20), 50000, np.uint16)
    out = resize_plane(p16, (40, 5))
    assert out.dtype == np.uint16 and out.shape == (5, 40)
    assert (out == 50000).all()

    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    up = resize_plane(ramp, (128, 16))
    assert up.dtype == np.uint8 and up.shape == (16, 128)
    assert abs(int(up[0, 0]) - 0) <= 2 and abs(int(up[0, -1]) - 252) <= 2


def test_image_data_helpers() -> None:
    rgb = np.zeros((4, 6, 3), np.uint16)
    img = ImageData(rgb=rgb, alpha=None, exif=b"x", icc_profile=b"y", source_format="PNG")
    assert img.bit_depth == 16 and img.size == (6, 4)
    bigger = img.with_pixels(np.zeros((8, 12, 3), np.uint8), np.zeros((8, 12), np.uint8))
    assert bigger.size == (12, 8) and bigger.bit_depth == 8
    assert (bigger.exif, bigger.icc_profile, bigger.source_format) == (b"x", b"y", "PNG")
    with pytest.raises(ValueError):
        img.with_pixels(rgb, np.zeros((4, 6), np.uint8))  # alpha dtype mismatch


def test_is_image_file() -> None:
    assert SUPPORTED_SUFFIXES == {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
    assert is_image_file("a/B.JPG") and is_image_file(Path("x.tiff"))
    assert not is_image_file("notes.txt") and not is_image_file("noext")


def test_engine_module_does_not_import_qt() -> None:
    source = Path(imageio.__file__).read_text(encoding="utf-8")
    import_lines = [line for line in source.splitlines() if line.lstrip().startswith(("import ", "from "))]
    assert not any("Qt" in line for line in import_lines)
