"""The figures the benchmarks save to be looked at (issues #12 and #13): benchmarks/_figures.py's grid and crop
position, sr_benchmark.py --crops and inpaint_benchmark.py --zoom, on tiny models and synthetic photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import _figures, inpaint_benchmark, sr_benchmark
from helpers import synthetic_photo, write_photos
from restorer.engine.archs import build_arch
from restorer.engine.modelfile import ExportedModel

LH, GAP = _figures.LABEL_H, _figures.GAP


def grid_size(cols: int, rows: int, cell: tuple[int, int], title: bool = True) -> tuple[int, int]:
    """(width, height) the module's docstring promises."""
    ch, cw = cell
    return cols * cw + (cols - 1) * GAP, LH * (2 if title else 1) + rows * (LH + ch) + (rows - 1) * GAP


def cell_at(fig: np.ndarray, row: int, col: int, cell: tuple[int, int], title: bool = True) -> np.ndarray:
    ch, cw = cell
    y = LH * (2 if title else 1) + row * (LH + ch + GAP) + LH
    x = col * (cw + GAP)
    return fig[y:y + ch, x:x + cw]


def one_line_exit_2(capsys, call) -> str:
    with pytest.raises(SystemExit) as e:
        call()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err and "\n" not in err and "Traceback" not in err, err
    return err


def test_grid_layout_pastes_cells_unchanged_under_their_labels(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"row {r}", [rng.integers(0, 256, (10, 14, 3), dtype=np.uint8) for _ in range(3)]) for r in range(2)]
    fig = _figures.labelled_grid(rows, ["a", "b", "a label far too long for its column"], title="t")
    assert fig.size == grid_size(3, 2, (10, 14))
    arr = np.asarray(fig)
    for r in range(2):
        for c in range(3):
            assert np.array_equal(cell_at(arr, r, c, (10, 14)), rows[r][1][c])
    assert (arr[:LH] < 128).any()  # the title is drawn
    assert np.asarray(_figures.labelled_grid(rows[:1], ["a", "b", "c"])).shape[0] == grid_size(3, 1, (10, 14), False)[1]
    with pytest.raises(ValueError):
        _figures.labelled_grid([("x", rows[0][1][:2])], ["a", "b", "c"])
    out = tmp_path / "f.png"
    _figures.save_figure(fig, out)
    assert np.array_equal(np.asarray(Image.open(out)), arr) and not list(tmp_path.glob("*.tmp"))


def test_busiest_window_finds_texture_aligned_and_prefers_filled_windows():
    rng = np.random.default_rng(1)
    gray = np.zeros((96, 128), np.float32)
    gray[48:96, 0:48] = rng.uniform(0, 6, (48, 48))  # weak texture filling a 48 px square
    gray[:, 100:] = 255  # one strong edge at x=100
    assert _figures.busiest_window(gray, (48, 48), step=4, parts=1)[1] in range(53, 101)  # the edge wins
    assert _figures.busiest_window(gray, (48, 48), step=4, parts=3) == (48, 0)  # texture everywhere wins
    y, x = _figures.busiest_window(gray, (24, 24), step=9, align=4, parts=3, bounds=(2, 2, 94, 126))
    assert y % 4 == 0 and x % 4 == 0 and 2 <= y <= 70 and 2 <= x <= 102


def tiny_sr_file(path, scale: int = 2):
    torch.manual_seed(0)
    params = {"scale": scale, "num_convs": 1, "channels": 8}
    net = build_arch("compact_sr", params)
    torch.save(ExportedModel(task="sr", arch="compact_sr", params=params, state_dict=net.state_dict(),
                             scale=scale).payload(), path)
    return path


def test_sr_crops_grid_nearest_lr_each_model_and_hr_at_full_size(tmp_path, no_shipped_models):
    data = tmp_path / "val"
    write_photos(data, 3, size=(45, 51))
    weights = tiny_sr_file(tmp_path / "tiny-compact.pt")
    out = tmp_path / "crops.png"
    assert sr_benchmark.main(["--data", str(data), "--scale", "2", "--weights", str(weights), "--threads", "1",
                              "--no-seed-timing", "--out", str(tmp_path / "t.md"), "--crops", str(out),
                              "--crop-images", "2", "--crop-size", "16"]) == 0
    fig = np.asarray(Image.open(out))
    assert (fig.shape[1], fig.shape[0]) == grid_size(4, 2, (16, 16))  # LR | bicubic | model | HR, 2 rows
    pairs = list(sr_benchmark.load_pairs(data, 2, 2))
    for r, (_name, hr, lr) in enumerate(pairs):
        y, x, side = sr_benchmark.crop_window(hr, 16, 2)
        assert side == 16 and y % 2 == 0 and x % 2 == 0
        assert np.array_equal(cell_at(fig, r, 3, (16, 16)), hr[y:y + 16, x:x + 16])
        nearest = cell_at(fig, r, 0, (16, 16))
        assert np.array_equal(nearest[::2, ::2], lr[y // 2:y // 2 + 8, x // 2:x // 2 + 8])
        assert np.array_equal(nearest[1::2, 1::2], nearest[::2, ::2])  # 2x2 blocks, not interpolated
        bic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        assert np.array_equal(cell_at(fig, r, 1, (16, 16)), bic[y:y + 16, x:x + 16])


def test_sr_crops_in_realistic_mode_add_the_faithful_model_and_pad_small_photos(tmp_path, no_shipped_models):
    from helpers import register_tiny_sr

    register_tiny_sr("sr-x2-faithful", scale=2)
    data = tmp_path / "val"
    write_photos(data, 1, size=(30, 34))
    out = tmp_path / "crops.jpg"
    assert sr_benchmark.main(["--data", str(data), "--scale", "2", "--degradation", "realistic", "--threads", "1",
                              "--weights", str(tiny_sr_file(tmp_path / "tiny.pt")), "--no-seed-timing",
                              "--out", str(tmp_path / "t.md"), "--crops", str(out), "--crop-size", "40"]) == 0
    im = Image.open(out)
    assert im.format == "JPEG" and im.size == grid_size(5, 1, (40, 40))  # + sr-x2-faithful; 1 image of 4 asked
    cell = cell_at(np.asarray(im.convert("RGB")), 0, 4, (40, 40)).astype(int)
    assert (cell[-6:] > 240).all() and (cell[:28, :28] < 240).any()  # a 30 px photo, white below it


@pytest.mark.parametrize("crops, flags, says", [("c.jpg", ["--crop-images", "0"], "--crop-images"),
                                                ("c.jpg", ["--crop-size", "15"], "--crop-size"),
                                                ("c.png", ["--crop-size", "4"], "--crop-size"),
                                                ("c.txt", [], ".jpg or .png")])
def test_sr_crops_bad_input_is_one_line_exit_2(tmp_path, capsys, crops, flags, says):
    err = one_line_exit_2(capsys, lambda: sr_benchmark.main(
        ["--data", str(tmp_path), "--scale", "2", "--crops", str(tmp_path / crops), *flags]))
    assert says in err and not (tmp_path / crops).exists()


@pytest.fixture()
def tiny_fill():
    from restorer.engine import registry

    torch.manual_seed(0)
    params = {"base_channels": 4, "gated": True}
    return registry.register_user_model("tiny-fill", ExportedModel(
        task="inpaint", arch="deepfill", params=params, state_dict=build_arch("deepfill", params).state_dict()))


def zoom_data(tmp_path):
    data = tmp_path / "val"
    data.mkdir()
    for name, seed in (("grass_a.png", 1), ("brick_b.png", 2), ("sky_c.png", 3)):
        Image.fromarray(synthetic_photo(112, 120, seed=seed)).save(data / name)
    return data


def test_zoom_rows_holes_restorer_telea_original_around_the_box(tmp_path, tiny_fill, monkeypatch):
    data = zoom_data(tmp_path)
    monkeypatch.setattr(inpaint_benchmark, "optional_telea", lambda: (lambda masked, hole: masked))  # leaves 0s
    out = tmp_path / "zoom.png"
    assert inpaint_benchmark.main(["--data", str(data), "--model", "tiny-fill", "--zoom", str(out),
                                   "--zoom-image", "brick", "--zoom-image", "grass_a.png", "--zoom-box", "32"]) == 0
    m = inpaint_benchmark.ZOOM_MARGIN
    cell = (32 + 2 * m, 32 + 2 * m)
    fig = np.asarray(Image.open(out))
    assert (fig.shape[1], fig.shape[0]) == grid_size(4, 2, cell)
    for r, name in enumerate(("brick_b.png", "grass_a.png")):  # in the order asked
        gt = np.asarray(Image.open(data / name).convert("RGB"))
        y, x = inpaint_benchmark.zoom_box(gt, 32)
        around = gt[y - m:y + 32 + m, x - m:x + 32 + m]
        inside = (slice(m, m + 32), slice(m, m + 32))
        holes, ours, telea, orig = (cell_at(fig, r, c, cell) for c in range(4))
        assert np.array_equal(orig, around)
        assert (holes[inside] == 255).all()
        assert (telea[inside] == 0).all()  # the third column is the Telea method's output
        keep = np.ones(cell, bool)
        keep[inside] = False
        assert np.array_equal(ours[keep], around[keep]) and not np.array_equal(ours[inside], around[inside])


def test_zoom_without_opencv_leaves_telea_out_and_bad_input_is_one_line(tmp_path, tiny_fill, monkeypatch, capsys):
    data = zoom_data(tmp_path)
    monkeypatch.setattr(inpaint_benchmark, "optional_telea", lambda: None)
    out = tmp_path / "zoom.jpg"
    assert inpaint_benchmark.main(["--data", str(data), "--model", "tiny-fill", "--zoom", str(out),
                                   "--zoom-image", "sky", "--zoom-box", "24"]) == 0
    assert Image.open(out).size == grid_size(3, 1, (24 + 2 * inpaint_benchmark.ZOOM_MARGIN,) * 2)
    assert "Telea column is left out" in capsys.readouterr().err

    def run(*flags):
        return lambda: inpaint_benchmark.main(["--data", str(data), "--model", "tiny-fill", *flags])

    assert "no photo named 'nothing'" in one_line_exit_2(capsys, run("--zoom", str(out), "--zoom-image", "nothing"))
    assert "too small" in one_line_exit_2(capsys, run("--zoom", str(out), "--zoom-image", "sky", "--zoom-box", "64"))
    assert ".jpg or .png" in one_line_exit_2(capsys, run("--zoom", str(tmp_path / "z.bmp"), "--zoom-image", "sky"))
    assert "--zoom-box" in one_line_exit_2(capsys, run("--zoom", str(out), "--zoom-box", "8"))
    assert "no such folder" in one_line_exit_2(capsys, lambda: inpaint_benchmark.main(
        ["--data", str(tmp_path / "missing"), "--zoom", str(out)]))
