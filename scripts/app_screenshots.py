"""Developer tool: regenerate the user guide's screenshots (docs/images/) by driving the app.

Run it under a real X server (or Xvfb) with models installed in the library it sees::

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/app_screenshots.py \\
        --photo some_photo.jpg --out docs/images

It opens the photo, brushes a mask, fills, upscales x2, shows the before/after split and the
dialogs, and saves each view as a PNG of at most ``--max-kb`` (downscaled / palettised if
needed).  The mask strokes are given in the photo's pixel coordinates (``--stroke``), so the
same script works for any photo; the defaults suit a 1024 x 768 landscape.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QApplication, QDialog, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's restorer package


def _to_pil(pixmap: QPixmap) -> Image.Image:
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    arr = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)[:, : w * 3]
    return Image.fromarray(arr.reshape(h, w, 3).copy())


def _palettise(im: Image.Image, chrome: tuple[int, int] | None) -> Image.Image:
    """256 colours, with entries reserved for the window chrome (menus, toolbar, status bar).

    A plain median cut spends the whole palette on the photo and turns the small coloured
    icons grey; here the photo gets 200 colours by median cut and the chrome bands (rows above
    ``chrome[0]`` and from ``chrome[1]`` on) 56 chosen for coverage.
    """
    w, h = im.size
    top, bottom = chrome if chrome else (round(h * 0.07), round(h * 0.96))
    bands = [im.crop((0, 0, w, top)), im.crop((0, bottom, w, h))]
    bands = [b for b in bands if b.height > 0]
    main_pal = im.quantize(colors=200, method=Image.Quantize.MEDIANCUT).getpalette()[: 200 * 3]
    main_pal += [0] * (200 * 3 - len(main_pal))
    chrome_pal: list[int] = []
    if bands:
        strip = Image.new("RGB", (w, sum(b.height for b in bands)))
        y = 0
        for b in bands:
            strip.paste(b, (0, y))
            y += b.height
        chrome_pal = strip.quantize(colors=56, method=Image.Quantize.FASTOCTREE).getpalette()[: 56 * 3]
    palette = Image.new("P", (1, 1))
    palette.putpalette(main_pal + chrome_pal)
    return im.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)


def save_png(pixmap: QPixmap, path: Path, *, max_kb: int = 300, max_width: int = 1200,
             chrome: tuple[int, int] | None = None) -> int:
    """Save a screenshot as PNG under `max_kb`: true colour if it fits, else palettised, then smaller.

    `chrome` = (first photo row, first status-bar row) of the pixmap, for the palette.
    """
    im = _to_pil(pixmap)
    if im.width > max_width:
        im = im.resize((max_width, round(im.height * max_width / im.width)), Image.Resampling.LANCZOS)
    candidates = [im]
    width = im.width
    while width > 500:
        width = int(width * 0.85)
        candidates.append(im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS))
    data = b""
    for cand in candidates:
        rows = None
        if chrome is not None:
            k = cand.height / pixmap.height()
            rows = (int(chrome[0] * k), int(chrome[1] * k + 0.999))
        for variant in (cand, _palettise(cand, rows)):
            buf = io.BytesIO()
            variant.save(buf, format="PNG", optimize=True)
            data = buf.getvalue()
            if len(data) <= max_kb * 1024:
                path.write_bytes(data)
                return len(data)
    path.write_bytes(data)
    return len(data)


def _wait(predicate: Callable[[], bool], timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for the app")
        QApplication.processEvents()
        time.sleep(0.01)


def _settle(ms: int = 150) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def _mouse(widget: QWidget, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton = Qt.MouseButton.NoButton,
           buttons: Qt.MouseButton = Qt.MouseButton.NoButton) -> None:
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    QGuiApplication.sendEvent(widget, QMouseEvent(kind, pos, glob, button, buttons, Qt.KeyboardModifier.NoModifier))


def _brush(canvas: QWidget, points: list[tuple[float, float]]) -> None:
    """Paint through image points with real mouse events (as a user would)."""
    wp = [canvas.image_to_widget(QPointF(x, y)) for x, y in points]
    left = Qt.MouseButton.LeftButton
    _mouse(canvas, QEvent.Type.MouseButtonPress, wp[0], left, left)
    for a, b in zip(wp, wp[1:]):
        for t in np.linspace(0.0, 1.0, 6)[1:]:
            _mouse(canvas, QEvent.Type.MouseMove, a + (b - a) * float(t), Qt.MouseButton.NoButton, left)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, wp[-1], left, Qt.MouseButton.NoButton)


def _grab_dialog(dialog: QDialog, path: Path, max_kb: int) -> None:
    dialog.show()
    _settle(200)
    print(f"{path.name}: {save_png(dialog.grab(), path, max_kb=max_kb) // 1024} KB")
    dialog.reject()


def _parse_stroke(text: str) -> list[tuple[float, float]]:
    pts = []
    for pair in text.split(";"):
        x, y = pair.split(",")
        pts.append((float(x), float(y)))
    return pts


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", required=True)
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--max-kb", type=int, default=300)
    ap.add_argument("--size", default="1280x820", help="window size")
    ap.add_argument("--brush", type=int, default=26)
    ap.add_argument("--stroke", action="append", default=None,
                    help="a mask stroke 'x,y;x,y;...' in photo pixels (repeatable)")
    ap.add_argument("--rect", action="append", default=None,
                    help="a rectangle 'x0,y0,x1,y1' in photo pixels drawn with the rectangle tool (repeatable)")
    ap.add_argument("--focus", default="600,615", help="photo point to zoom on for the close-ups")
    ap.add_argument("--divider", type=float, default=684.0, help="photo x of the divider in the fill comparison")
    ap.add_argument("--upscale-focus", default="480,250", help="photo point (before upscaling) for the x2 close-up")
    args = ap.parse_args(argv)

    import os

    os.environ.setdefault("RESTORER_CONFIG_DIR", tempfile.mkdtemp(prefix="restorer-shots-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Restorer")

    from restorer.app import main_window as mw
    from restorer.app.dialogs import AboutDialog, SaveOptionsDialog, UpscaleDialog
    from restorer.app.preferences import Preferences
    from restorer.engine import registry

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    win = mw.MainWindow(Preferences(brush_size=args.brush, mask_opacity=0.55))
    win.resize(width, height)
    win.show()
    _settle(300)
    if not win.open_path(args.photo):
        return 1
    _settle(200)
    canvas, doc = win.canvas, win.document
    assert doc is not None

    def shot(name: str, widget: Optional[QWidget] = None) -> None:
        _settle(200)
        pixmap = (widget or win).grab()
        dpr = pixmap.devicePixelRatio()
        top = canvas.mapTo(win, QPoint(0, 0)).y() * dpr
        bottom = win.statusBar().mapTo(win, QPoint(0, 0)).y() * dpr
        size = save_png(pixmap, out / name, max_kb=args.max_kb, chrome=(int(top), int(bottom)))
        print(f"{name}: {size // 1024} KB")

    strokes = [_parse_stroke(s) for s in (args.stroke or ["684,622;684,668", "640,638;644,648"])]
    for pts in strokes:
        _brush(canvas, pts)
    win.act_rect.trigger()
    for r in args.rect or ["381,594,411,655"]:
        x0, y0, x1, y1 = (float(v) for v in r.split(","))
        _brush(canvas, [(x0, y0), (x1, y1)])
    win.act_brush.trigger()
    fx, fy = (float(v) for v in args.focus.split(","))
    # park the pointer next to the strokes so the brush circle shows
    _mouse(canvas, QEvent.Type.MouseMove, canvas.image_to_widget(QPointF(fx + 80, fy - 40)))
    shot("01-mask.png")

    # close-up of the mask at 200%
    canvas.set_zoom(2.0, canvas.image_to_widget(QPointF(fx, fy)))
    _mouse(canvas, QEvent.Type.MouseMove, canvas.image_to_widget(QPointF(fx + 60, fy - 30)))
    shot("02-mask-closeup.png")

    if not win.start_fill():
        print("fill did not start (no inpainting model?)", file=sys.stderr)
        return 1
    _wait(lambda: not win.job_running)
    _settle(200)
    _mouse(canvas, QEvent.Type.MouseMove, QPointF(-50, -50))
    canvas.leaveEvent(QEvent(QEvent.Type.Leave))
    win.set_compare(True)
    p = canvas.image_to_widget(QPointF(args.divider, fy))
    canvas.set_divider(p.x() / canvas.width())
    shot("03-fill-compare.png")
    win.set_compare(False)
    canvas.fit_to_window()
    shot("04-filled.png")

    dlg = UpscaleDialog(registry.all_models("sr"), doc.size, factor=2, parent=win)
    _grab_dialog(dlg, out / "05-upscale-dialog.png", args.max_kb)

    # a smaller tile makes the progress visible for the screenshot
    win.prefs.tile_size = 128
    progressed: list[int] = []
    win.jobProgressed.connect(lambda d, t, m: progressed.append(d) if t > 1 and d * 3 >= t else None)
    win.start_upscale("", 2)
    _wait(lambda: bool(progressed) or not win.job_running)
    if win.job_running:
        shot("06-upscale-progress.png")
    _wait(lambda: not win.job_running, 600)
    _settle(200)
    ux, uy = (float(v) * 2 for v in args.upscale_focus.split(","))
    canvas.set_zoom(1.0)
    canvas.center_on(QPointF(ux, uy))
    win.set_compare(True)
    canvas.set_divider(0.5)
    shot("07-upscale-compare.png")
    win.set_compare(False)

    target = Path(tempfile.mkdtemp()) / "lighthouse_restored.jpg"
    _grab_dialog(SaveOptionsDialog(target, "jpg", 92, parent=win), out / "08-save-options.png", args.max_kb)
    _grab_dialog(AboutDialog(registry.all_models(), win.device_label.text(), parent=win),
                 out / "09-about.png", args.max_kb)

    doc.undo_stack.setClean()
    doc.mark_saved(target)
    win.close()
    QTimer.singleShot(0, app.quit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
