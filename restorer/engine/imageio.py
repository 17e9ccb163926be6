"""Reading and writing images for the engine (Pillow + numpy only, never Qt).

long: loading (every Pillow mode, EXIF, ICC, limits) and saving (formats, bit depth, verified atomic
writes) share the format tables and the colour-mode rules, so they stay one module.

Everything the engine processes goes through :func:`load_image` and leaves through
:func:`save_image`.  Pixels travel as numpy arrays inside :class:`ImageData`, together
with the metadata worth writing back (EXIF, ICC profile).

Loading
    JPEG, PNG, WebP, TIFF and BMP are the supported formats (anything else Pillow can
    decode is accepted too, e.g. GIF, whose first frame is used).  The EXIF orientation
    is applied to the pixels and the stored EXIF gets ``Orientation = 1``.  Every Pillow
    mode becomes RGB (+ optional alpha):

    * ``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGB``, ``RGBA``, ``CMYK`` ... -> ``uint8``.
      Palette images with transparency keep it as alpha.  CMYK is converted through its
      embedded ICC profile when there is one (the result is tagged sRGB), else naively.
    * 16-bit grayscale (``I;16``, ``I;16B``, ``I``) -> ``uint16`` RGB (gray replicated).
    * Grey sources (any depth) are marked ``gray=True``; pipelines keep the mark (and make their
      output grey, see :func:`keep_colour_mode`) so the result is saved grey with the source's depth.
      ``I`` (32-bit) and ``F`` (float) are clipped to the 16-bit range (``F`` data in
      [0, 1] is scaled first).
    * Pillow has no 16-bit colour mode: it decodes 16-bit RGB(A) PNG/TIFF to 8 bits, so
      those files load as ``uint8``.  That precision loss happens inside Pillow.

Saving
    The format comes from ``format=`` or the file suffix.  JPEG and BMP cannot keep
    alpha (it is dropped with a warning).  Only PNG and TIFF can hold 16 bits, and only
    for grayscale without alpha (Pillow's limitation); other 16-bit images are reduced to
    8 bits with a warning.  EXIF and ICC are written for JPEG, PNG, WebP and TIFF.  The
    image is encoded in memory, then written atomically and verified (temporary file in the
    same directory, every byte checked written, size and content read back, then
    ``os.replace``): a full disk is an error ("the disk is full") and never a truncated file,
    and the previous file stays as it was.  Existing files, above all the user's originals,
    are never overwritten unless ``overwrite=True``.  :func:`check_output` is every check
    :func:`save_image` makes before writing, for callers to run *before* the work.

Decompression-bomb protection is this module's job: :func:`load_image` rejects images
with more than ``max_pixels`` pixels before decoding them.  The default, :data:`MAX_PIXELS`,
is Pillow's own hard limit (2 x ``Image.MAX_IMAGE_PIXELS`` of a stock Pillow, 178,956,970
pixels, e.g. 16384 x 10922); a caller that means to open larger images passes a larger
``max_pixels`` (or None) explicitly.  While opening, Pillow's process-wide guard is lifted
so that this one documented limit is the one that applies, and restored afterwards.
``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched: truncated files are errors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restorer.engine.errors import ImageReadError, InputError, RestorerError
from restorer.engine.fileutil import WriteError, describe_os_error, new_file_mode, probe_writable_folder, write_bytes_atomic

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Default decompression-bomb limit of :func:`load_image` (pixels): Pillow's own hard limit.
MAX_PIXELS = 178_956_970

#: File suffixes (lower case) of the formats the app reads and writes.
SUPPORTED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})

_SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_FORMAT_ALIASES = {
    "JPEG": "JPEG",
    "JPG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "TIFF": "TIFF",
    "TIF": "TIFF",
    "BMP": "BMP",
}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
_METADATA_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_GRAY_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "BMP"})  # can store a single channel

_EXIF_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
# Descriptive IFD0 tags worth carrying over from a TIFF source (its other tags
# describe the TIFF's own layout and must not be copied into another file).
_TIFF_DESCRIPTIVE_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)
_JPEG_MAX_EXIF = 65533  # one APP1 marker


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class ImageData:
    """Decoded pixels plus the metadata to write back when saving.

    Attributes:
        rgb: ``(H, W, 3)`` array, ``uint8`` or ``uint16`` (16-bit sources stay 16-bit).
        alpha: ``(H, W)`` array of the same dtype as ``rgb``, or ``None`` if opaque.
        exif: raw EXIF block (as Pillow writes it, starting with ``b"Exif\\0\\0"``) with
            the orientation reset to 1 because the pixels are already upright; or None.
        icc_profile: ICC profile bytes describing ``rgb`` (an RGB profile, or a GRAY
            profile when the source was grayscale), or None.
        source_format: Pillow format name of the source file (``"JPEG"``...), or None.
        gray: the source was grey (one channel): ``rgb`` holds three equal channels and the
            image is saved with one channel (keeping 16 bits in PNG/TIFF).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    source_format: str | None = None
    gray: bool = False

    def __post_init__(self) -> None:
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"rgb must be an (H, W, 3) array, got {getattr(rgb, 'shape', type(rgb))}")
        if rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"rgb must be uint8 or uint16, got {rgb.dtype}")
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValueError("rgb must not be empty")
        alpha = self.alpha
        if alpha is not None:
            if not isinstance(alpha, np.ndarray) or alpha.shape != rgb.shape[:2]:
                raise ValueError(
                    f"alpha must be an {rgb.shape[:2]} array, got {getattr(alpha, 'shape', type(alpha))}"
                )
            if alpha.dtype != rgb.dtype:
                raise ValueError(f"alpha dtype {alpha.dtype} differs from rgb dtype {rgb.dtype}")

    @property
    def bit_depth(self) -> int:
        """Bits per channel: 8 or 16."""
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def with_pixels(self, rgb: np.ndarray, alpha: np.ndarray | None) -> ImageData:
        """Return a copy with new pixels (any size or bit depth) and the same metadata."""
        return replace(self, rgb=rgb, alpha=alpha)

    def __repr__(self) -> str:
        w, h = self.size
        return (
            f"ImageData({w}x{h}, {self.bit_depth}-bit, alpha={self.alpha is not None}, "
            f"exif={len(self.exif) if self.exif else 0}B, "
            f"icc={len(self.icc_profile) if self.icc_profile else 0}B, "
            f"source_format={self.source_format!r})"
        )


# ------------------------------------------------------------------ pixel helpers


def _dtype_max(dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise ValueError(f"unsupported dtype {dtype}; expected uint8 or uint16")


def to_float01(arr: np.ndarray) -> np.ndarray:
    """Convert ``uint8`` (/255), ``uint16`` (/65535) or bool pixels to float32 in [0, 1].

    Float input is returned as float32 unchanged (assumed to be in [0, 1] already).
    """
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    scale = np.float32(1.0 / _dtype_max(arr.dtype))
    out = arr.astype(np.float32)
    out *= scale
    return out


def from_float01(arr: np.ndarray, dtype: np.dtype | type | str) -> np.ndarray:
    """Convert float pixels in [0, 1] to ``uint8`` or ``uint16``: scale, round, clip.

    NaN becomes 0; values outside [0, 1] are clipped.
    """
    target = np.dtype(dtype)
    maxv = _dtype_max(target)
    out = np.array(arr, dtype=np.float32, copy=True)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    out *= np.float32(maxv)
    np.rint(out, out=out)
    return out.astype(target)


def _reduce_to_8bit(arr: np.ndarray) -> np.ndarray:
    """Round ``uint16`` to ``uint8`` (x / 257, rounded); ``uint8`` passes through."""
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one ``(H, W)`` plane to ``size = (width, height)`` with Lanczos.

    The plane is resampled in Pillow's 32-bit float mode (``F``) so no precision is lost,
    then rounded and clipped back to its dtype (``uint8``/``uint16``).  Float planes stay
    float32; bool planes (masks) are thresholded at 0.5 after resampling.
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"resize_plane expects an (H, W) array, got shape {plane.shape}")
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid target size {width}x{height}")
    if (width, height) == (plane.shape[1], plane.shape[0]):
        return plane.copy()
    src = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    out = np.asarray(src.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    if plane.dtype == np.bool_:
        return out >= 0.5
    if np.issubdtype(plane.dtype, np.floating):
        return out.astype(plane.dtype)
    maxv = _dtype_max(plane.dtype)
    return np.clip(np.rint(out), 0, maxv).astype(plane.dtype)


def is_image_file(path: PathLike) -> bool:
    """True if ``path`` has one of :data:`SUPPORTED_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


# ------------------------------------------------------------------------ loading

_bomb_guard_lock = threading.Lock()
_bomb_guard_users = 0
_bomb_guard_saved: int | None = None


@contextlib.contextmanager
def _pillow_bomb_guard_lifted() -> Iterator[None]:
    """Disable Pillow's global decompression-bomb check while we open a file.

    We enforce our own (configurable) limit on ``im.size`` before decoding.  Reference
    counted so concurrent loads in several threads restore the original value once.
    """
    global _bomb_guard_users, _bomb_guard_saved
    with _bomb_guard_lock:
        if _bomb_guard_users == 0:
            _bomb_guard_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _bomb_guard_users += 1
    try:
        yield
    finally:
        with _bomb_guard_lock:
            _bomb_guard_users -= 1
            if _bomb_guard_users == 0:
                Image.MAX_IMAGE_PIXELS = _bomb_guard_saved


def _read_error(path: PathLike, reason: str) -> ImageReadError:
    return ImageReadError(f"cannot read '{os.fspath(path)}': {reason}")


def _describe_decode_error(exc: BaseException) -> str:
    text = str(exc).strip()
    lowered = text.lower()
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    if "truncated" in lowered or isinstance(exc, EOFError):
        return "file is truncated"
    if isinstance(exc, OSError) and exc.strerror and exc.errno is not None:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return f"file is corrupt or unsupported ({text})" if text else "file is corrupt or unsupported"


def _check_path(path: Path) -> None:
    """Raise ImageReadError for paths that cannot be an image file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _read_error(path, "file does not exist") from None
    except PermissionError:
        raise _read_error(path, "permission denied") from None
    except OSError as exc:
        raise _read_error(path, exc.strerror or str(exc)) from None
    if path.is_dir():
        raise _read_error(path, "it is a directory, not an image file")
    if st.st_size == 0:
        raise _read_error(path, "file is empty")


def _decode(path: PathLike, max_pixels: int | None) -> tuple[Image.Image, str | None, bytes | None]:
    """Open, size-check, fully decode and orient an image.

    Returns ``(image, source_format, raw_exif_or_None)`` where ``image`` is upright and
    detached from the file; ``raw_exif`` is the source EXIF block (orientation not yet
    reset) if the file had one.
    """
    p = Path(path)
    _check_path(p)
    try:
        with _pillow_bomb_guard_lifted():
            im = Image.open(p)
    except UnidentifiedImageError:
        raise _read_error(path, "not an image file (or an unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise _read_error(path, f"image is too large ({exc})") from None
    except FileNotFoundError:
        raise _read_error(path, "file does not exist") from None
    except PermissionError:
        raise _read_error(path, "permission denied") from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise _read_error(path, _describe_decode_error(exc)) from exc

    with im:
        source_format = im.format
        width, height = im.size
        if width <= 0 or height <= 0:
            raise _read_error(path, f"image has zero size ({width}x{height})")
        pixels = width * height
        if max_pixels is not None and pixels > max_pixels:
            raise _read_error(
                path,
                f"image is {width}x{height} ({pixels:,} pixels), more than the limit of "
                f"{max_pixels:,} pixels",
            )
        try:
            with _pillow_bomb_guard_lifted():
                im.load()
        except Image.DecompressionBombError as exc:
            raise _read_error(path, f"image is too large ({exc})") from None
        except Exception as exc:
            raise _read_error(path, _describe_decode_error(exc)) from exc

        exif = _source_exif(im, path)
        try:
            oriented = ImageOps.exif_transpose(im)
        except Exception as exc:  # corrupt EXIF must not make the image unreadable
            log.warning("%s: ignoring unreadable EXIF orientation (%s)", os.fspath(path), exc)
            oriented = im.copy()
    return oriented, source_format, exif


def _source_exif(im: Image.Image, path: PathLike) -> bytes | None:
    """EXIF of ``im`` as a fresh block with Orientation = 1, or None.

    For TIFF sources the EXIF lives in the TIFF's own directory, so only descriptive
    tags and the EXIF/GPS sub-directories are carried over.
    """
    try:
        raw = im.info.get("exif")
        if raw:
            exif = Image.Exif()
            exif.load(raw)
        elif im.format == "TIFF":
            src = im.getexif()
            exif = Image.Exif()
            for tag in _TIFF_DESCRIPTIVE_TAGS:
                if tag in src:
                    exif[tag] = src[tag]
            for ifd_tag in (_EXIF_IFD, _GPS_IFD):
                sub = src.get_ifd(ifd_tag)
                if sub:
                    exif[ifd_tag] = dict(sub)
            if not exif:
                return None
        else:
            return None
        if _EXIF_ORIENTATION in exif:
            exif[_EXIF_ORIENTATION] = 1
        data = exif.tobytes()
        return data or None
    except Exception as exc:
        log.warning("%s: dropping unreadable EXIF metadata (%s)", os.fspath(path), exc)
        return None


def _icc_colour_space(icc: bytes | None) -> str | None:
    """Colour space of an ICC profile ("RGB", "GRAY", "CMYK"...), None if unparsable."""
    if not icc or len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return icc[16:20].decode("ascii", "replace").strip() or None


def _srgb_profile_bytes() -> bytes | None:
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except Exception:  # Pillow built without littlecms
        return None


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, path: PathLike) -> tuple[Image.Image, bytes | None]:
    """Convert CMYK to RGB, colour-managed through the embedded profile when possible."""
    if _icc_colour_space(icc) == "CMYK":
        try:
            from PIL import ImageCms

            src_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))  # type: ignore[arg-type]
            dst_profile = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(
                im,
                src_profile,
                dst_profile,
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
                outputMode="RGB",
            )
            if converted is not None:
                return converted, _srgb_profile_bytes()
        except Exception as exc:
            log.warning("%s: CMYK profile unusable (%s); converting naively", os.fspath(path), exc)
    return im.convert("RGB"), None


def _planes(im: Image.Image, path: PathLike) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Turn any Pillow image into ``(pixels, alpha, icc_profile)``.

    ``pixels`` is ``(H, W)`` for grayscale sources and ``(H, W, 3)`` otherwise; dtype is
    ``uint8`` or ``uint16``.  The ICC profile is the source one, replaced or dropped when
    the conversion changed the colour space.
    """
    icc = im.info.get("icc_profile") or None
    mode = im.mode

    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16), None, icc
    if mode == "I":
        arr = np.asarray(im)
        return np.clip(arr, 0, 65535).astype(np.uint16), None, icc
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0)
        finite_max = float(arr.max()) if arr.size else 0.0
        if finite_max <= 1.0:
            return from_float01(arr, np.uint16), None, icc
        return np.clip(np.rint(arr), 0, 65535).astype(np.uint16), None, icc
    if mode in ("1", "L", "LA", "La"):
        if im.has_transparency_data:  # LA, or gray with a tRNS colour key
            arr = np.asarray(im.convert("LA"))
            return np.ascontiguousarray(arr[..., 0]), np.ascontiguousarray(arr[..., 1]), icc
        return np.asarray(im.convert("L")), None, icc
    if mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc, path)
        return np.asarray(im), None, icc
    if mode in ("P", "PA", "RGBA", "RGBa", "RGB") and im.has_transparency_data:
        arr = np.asarray(im.convert("RGBA"))
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3]), icc
    if mode == "P":
        return np.asarray(im.convert("RGB")), None, icc
    if mode == "RGB":
        return np.asarray(im), None, icc
    # RGBX, YCbCr, LAB, HSV, ...
    try:
        rgb = im.convert("RGB")
    except Exception as exc:
        raise _read_error(path, f"unsupported colour mode {mode}") from exc
    if _icc_colour_space(icc) not in (None, "RGB"):
        icc = None
    return np.asarray(rgb), None, icc


def load_image(path: PathLike, *, max_pixels: int | None = MAX_PIXELS) -> ImageData:
    """Read an image file into an upright :class:`ImageData`.

    Args:
        path: file to read.
        max_pixels: decompression-bomb limit, checked before decoding (None: no limit).

    Raises:
        ImageReadError: missing file, directory, not an image, truncated or corrupt
            data, zero-size image, or more than ``max_pixels`` pixels.
    """
    im, source_format, exif = _decode(path, max_pixels)
    with im:
        pixels, alpha, icc = _planes(im, path)
    if pixels.ndim == 2:
        rgb = np.repeat(pixels[:, :, None], 3, axis=2)
        if _icc_colour_space(icc) not in (None, "GRAY"):
            icc = None
    else:
        rgb = np.ascontiguousarray(pixels)
        if _icc_colour_space(icc) not in (None, "RGB"):
            icc = None
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    if alpha is not None and not alpha.flags.writeable:
        alpha = alpha.copy()
    log.debug("loaded %s: %s %dx%d %s", os.fspath(path), source_format, rgb.shape[1], rgb.shape[0], rgb.dtype)
    return ImageData(rgb=rgb, alpha=alpha, exif=exif, icc_profile=icc, source_format=source_format,
                     gray=pixels.ndim == 2)


def keep_colour_mode(source: ImageData, rgb: np.ndarray) -> np.ndarray:
    """`rgb` (a pipeline's output for `source`) in the source's colour mode and bit depth: for a grey
    source, three equal channels of its luma (a colour network's output of a grey photo is
    nearly, not exactly, grey); the dtype becomes the source's."""
    rgb = np.asarray(rgb)
    if source.gray and not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
        maxv = _dtype_max(rgb.dtype)
        luma = rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)
        plane = np.clip(np.rint(luma), 0, maxv).astype(rgb.dtype)
        rgb = np.repeat(plane[:, :, None], 3, axis=2)
    if rgb.dtype != source.rgb.dtype:
        rgb = from_float01(to_float01(rgb), source.rgb.dtype)
    return np.ascontiguousarray(rgb)


def image_size(path: PathLike, *, max_pixels: int | None = MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (nothing decoded), with the same checks
    :func:`load_image` makes first (missing, not an image, more than ``max_pixels``)."""
    p = Path(path)
    _check_path(p)
    try:
        with _pillow_bomb_guard_lifted():
            with Image.open(p) as im:
                width, height = im.size
    except UnidentifiedImageError:
        raise _read_error(path, "not an image file (or an unsupported format)") from None
    except Exception as exc:
        raise _read_error(path, _describe_decode_error(exc)) from exc
    if max_pixels is not None and width * height > max_pixels:
        raise _read_error(path, f"image is {width}x{height} ({width * height:,} pixels), more than the limit of "
                                f"{max_pixels:,} pixels")
    return int(width), int(height)


def _luma_at_least_half(rgb: np.ndarray) -> np.ndarray:
    """``L >= 128`` (8-bit) / ``L >= 32896`` (16-bit) with Pillow's RGB->L weights."""
    r, g, b = (rgb[..., i].astype(np.uint64) for i in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    return luma >= (128 if rgb.dtype == np.uint8 else 128 * 257)


def load_mask(path: PathLike, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask image as an ``(H, W)`` bool array (True = white = selected).

    A pixel is selected when its luminance is at least 128 (of 255).  A transparent
    image whose colour is uniform (e.g. a brush stroke layer exported as PNG) is read
    from its alpha channel instead (alpha >= 128).

    Args:
        path: mask file.
        size: expected ``(width, height)``; an InputError is raised if it differs.
    """
    im, _fmt, _exif = _decode(path, MAX_PIXELS)
    with im:
        pixels, alpha, _icc = _planes(im, path)
    half = 128 if pixels.dtype == np.uint8 else 128 * 257
    if alpha is not None and _is_uniform(pixels):
        mask = alpha >= half
    elif pixels.ndim == 2:
        mask = pixels >= half
    else:
        mask = _luma_at_least_half(pixels)
    height, width = mask.shape
    if size is not None and (int(size[0]), int(size[1])) != (width, height):
        raise InputError(
            f"mask '{os.fspath(path)}' is {width}x{height} but image is {int(size[0])}x{int(size[1])}"
        )
    return np.ascontiguousarray(mask)


def _is_uniform(pixels: np.ndarray) -> bool:
    first = pixels[0, 0]
    return bool(np.all(pixels == first))


# ------------------------------------------------------------------------- saving


def _resolve_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = _FORMAT_ALIASES.get(format.strip().upper().lstrip("."))
        if fmt is None:
            raise InputError(
                f"cannot save '{path}': unsupported format '{format}' (use JPEG, PNG, WebP, TIFF or BMP)"
            )
        return fmt
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        what = f"unsupported file type '{path.suffix}'" if path.suffix else "no file extension"
        raise InputError(
            f"cannot save '{path}': {what} (use .jpg, .png, .webp, .tif or .bmp)"
        )
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())
    except OSError:
        return False


def _to_pil(image: ImageData, fmt: str, path: Path) -> tuple[Image.Image, bool]:
    """Build the Pillow image to encode as ``fmt``; returns ``(image, is_gray)``."""
    rgb, alpha = image.rgb, image.alpha
    name = os.fspath(path)
    if alpha is not None and fmt not in _ALPHA_FORMATS:
        log.warning("%s: %s cannot store transparency; the alpha channel is dropped", name, fmt)
        alpha = None

    def is_gray() -> bool:
        return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))

    if rgb.dtype == np.uint16:
        gray = is_gray()
        if fmt in _SIXTEEN_BIT_FORMATS and gray and alpha is None:
            return Image.fromarray(np.ascontiguousarray(rgb[..., 0])), True  # mode I;16
        if fmt in _SIXTEEN_BIT_FORMATS:
            what = "16-bit images with transparency" if gray else "16-bit colour images"
            log.warning("%s: Pillow cannot write %s as %s; saving 8 bits per channel", name, what, fmt)
        else:
            log.debug("%s: %s is 8-bit; reducing from 16 bits", name, fmt)
        rgb = _reduce_to_8bit(rgb)
        alpha = None if alpha is None else _reduce_to_8bit(alpha)

    # Single-channel output only when the source was gray (GRAY profile), so that the
    # profile stays valid; otherwise a colour pipeline output that happens to be gray is
    # still written as RGB.
    if fmt in _GRAY_FORMATS and (image.gray or _icc_colour_space(image.icc_profile) == "GRAY") and is_gray():
        plane = np.ascontiguousarray(rgb[..., 0])
        if alpha is None:
            return Image.fromarray(plane), True
        return Image.fromarray(np.dstack([plane, alpha])), True  # LA
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb)), False
    return Image.fromarray(np.dstack([rgb, alpha])), False  # RGBA


PNG_COMPRESS_LEVEL = 3


def _save_params(image: ImageData, fmt: str, is_gray: bool, quality: int, path: Path) -> dict:
    params: dict = {}
    if fmt == "JPEG":
        # 4:4:4 chroma at high quality: restored detail should not be blurred again.
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True)
    elif fmt == "WEBP":
        params.update(quality=quality, method=4)
    elif fmt == "PNG":
        # zlib level 3: a 13 MP PNG encodes in about 1.0 s instead of 3.0 s at Pillow's usual 6, for a
        # file about 5% larger (measured on a x4 photo, 2-core CPU); the pixels are the same (lossless)
        params.update(compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "TIFF":
        from PIL import features

        # libtiff compresses but cannot write EXIF sub-directories (capture date,
        # GPS...); Pillow's own writer can, uncompressed.  Metadata wins.
        if features.check("libtiff") and not _exif_has_subifds(image.exif):
            params.update(compression="tiff_adobe_deflate")

    if fmt in _METADATA_FORMATS:
        icc = image.icc_profile
        if icc:
            expected = "GRAY" if is_gray else "RGB"
            if _icc_colour_space(icc) == expected:
                params["icc_profile"] = icc
            else:
                log.debug("%s: ICC profile does not match %s output; not written", path, expected)
        exif = image.exif
        if exif:
            if fmt == "JPEG" and len(exif) > _JPEG_MAX_EXIF:
                log.warning("%s: EXIF block too large for JPEG (%d bytes); not written", path, len(exif))
            else:
                params["exif"] = exif
    return params


def _exif_has_subifds(exif: bytes | None) -> bool:
    if not exif:
        return False
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        return _EXIF_IFD in parsed or _GPS_IFD in parsed
    except Exception:
        return True


def check_output(
    path: PathLike,
    *,
    format: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
) -> str:
    """Every check :func:`save_image` makes before writing; returns the Pillow format name.

    Run it before expensive work so that a bad destination is reported at once.

    Raises:
        InputError: unsupported or missing extension/format, quality outside 1..100, the
            destination is a directory, exists (without ``overwrite``), is a protected input
            (without ``overwrite``), or its folder cannot be created or written.
    """
    target = Path(path)
    name = os.fspath(target)
    fmt = _resolve_format(target, format)
    try:
        q = int(quality)
    except (TypeError, ValueError):
        raise InputError(f"cannot save '{name}': quality must be a number between 1 and 100, got {quality!r}") from None
    if not 1 <= q <= 100:
        raise InputError(f"cannot save '{name}': quality must be between 1 and 100, got {quality}")
    if target.is_dir():
        raise InputError(f"cannot save '{name}': it is a directory")
    if not overwrite:
        for protected in protect:
            if _same_file(target, Path(protected)):
                raise InputError(f"refusing to overwrite the input image '{name}'; use --overwrite")
        if target.exists() or target.is_symlink():
            raise InputError(f"'{name}' exists; use --overwrite")
    problem = probe_writable_folder(target.parent)
    if problem:
        raise InputError(f"cannot save '{name}': {problem}")
    return fmt


def _encode(pil_image: Image.Image, fmt: str, params: dict) -> io.BytesIO:
    buf = io.BytesIO()
    try:
        pil_image.save(buf, format=fmt, **params)
    except OSError:
        if not (fmt == "JPEG" and params.get("optimize")):
            raise
        # Pillow sizes libjpeg's buffer for optimize=True at 2 bytes/px, which very noisy images
        # at high quality exceed ("Suspension not allowed here"); the unoptimised encoder streams.
        buf = io.BytesIO()
        pil_image.save(buf, format=fmt, **{**params, "optimize": False})
    return buf


def save_image(
    image: ImageData,
    path: PathLike,
    *,
    format: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
) -> Path:
    """Write ``image`` to ``path`` atomically, verify it, and return the path.

    Args:
        image: pixels and metadata to write.
        path: destination; its parent directory is created if missing.
        format: "JPEG", "PNG", "WEBP", "TIFF" or "BMP" (aliases "JPG", "TIF"); by default
            taken from the suffix.
        quality: JPEG/WebP quality, 1-100.
        overwrite: replace an existing file (including a protected one).
        protect: paths that must never be replaced without ``overwrite`` (the inputs).

    Raises:
        InputError: see :func:`check_output`.
        RestorerError: encoding or writing failed (e.g. "the disk is full"); any previous
            file at ``path`` is intact and no partial file is left.
    """
    target = Path(path)
    name = os.fspath(target)
    protect = list(protect)
    fmt = check_output(target, format=format, quality=quality, overwrite=overwrite, protect=protect)

    pil_image, is_gray = _to_pil(image, fmt, target)
    params = _save_params(image, fmt, is_gray, int(quality), target)

    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot save '{name}': cannot create folder '{parent}' ({exc.strerror or exc})") from None

    mode = new_file_mode(target)
    try:
        # Encoded in memory: given a real file, Pillow's encoders write to the descriptor and ignore
        # short writes (a full disk gave a truncated JPEG and success). write_bytes_atomic checks
        # every byte, the size and the content read back.
        buf = _encode(pil_image, fmt, params)
        write_bytes_atomic(target, buf.getbuffer(), replace=overwrite, mode=mode)
    except RestorerError:
        raise
    except FileExistsError:
        raise InputError(f"'{name}' exists; use --overwrite") from None
    except MemoryError:
        raise RestorerError(f"cannot write '{name}': not enough memory to encode it") from None
    except OSError as exc:
        raise WriteError(f"cannot write '{name}': {describe_os_error(exc)}") from exc
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:  # Pillow encoder rejections
        raise RestorerError(f"cannot write '{name}' as {fmt}: {exc}") from exc
    finally:
        pil_image.close()
    log.debug("saved %s (%s)", name, fmt)
    return target
