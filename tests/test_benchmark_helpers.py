"""benchmarks/_photos.py (the photo listings and crops every benchmark's protocol is measured on) and
benchmarks/_results.py (results files written whole)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks._photos import centre_crop, flat_photo_paths, image_paths, load_photos, load_rgb
from benchmarks._results import write_results
from helpers import synthetic_photo


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(synthetic_photo(60, 80, seed=1)).save(tmp_path / "b.PNG")
    Image.fromarray(synthetic_photo(70, 50, seed=2)).save(tmp_path / "a.jpg")
    Image.fromarray(synthetic_photo(30, 40, seed=3)).save(tmp_path / "sub" / "c.webp")
    Image.fromarray(synthetic_photo(30, 40, seed=4)).save(tmp_path / "sub" / "deeper" / "d.tif")
    Image.fromarray(synthetic_photo(30, 40, seed=5)).save(tmp_path / "sub" / "e.gif")  # not an image we open
    (tmp_path / "notes.txt").write_text("x")
    return tmp_path


def test_recursive_listing_is_sorted_by_path_and_keeps_the_apps_suffixes(folder):
    names = [p.relative_to(folder).as_posix() for p in image_paths(folder)]
    assert names == ["a.jpg", "b.PNG", "sub/c.webp", "sub/deeper/d.tif"]
    assert [p.name for p in image_paths(folder, 2)] == ["a.jpg", "b.PNG"]
    assert image_paths(folder, 0) == image_paths(folder)  # 0: all


def test_flat_listing_is_the_jpg_png_files_of_the_folder_itself(folder):
    assert [p.name for p in flat_photo_paths(folder)] == ["a.jpg", "b.PNG"]


def test_photos_are_loaded_upright_and_centre_cropped(folder, tmp_path):
    im = Image.fromarray(synthetic_photo(40, 60, seed=9))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    im.save(folder / "z.png", exif=exif)
    assert load_rgb(folder / "z.png").shape == (60, 40, 3)

    arr = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
    assert np.array_equal(centre_crop(arr, 4), arr[1:5, 2:6])  # offsets rounded down
    assert np.array_equal(centre_crop(arr, 100), arr)
    assert centre_crop(arr[:, ::2], 3).flags.c_contiguous

    photos = load_photos(folder, 3, size=32)
    assert [name for name, _ in photos] == ["a.jpg", "b.PNG", "c.webp"]
    assert [a.shape for _, a in photos] == [(32, 32, 3), (32, 32, 3), (30, 32, 3)]
    assert np.array_equal(photos[1][1], load_rgb(folder / "b.PNG")[14:46, 24:56])
    assert load_photos(folder, 1)[0][1].shape == (70, 50, 3)


def test_an_empty_or_missing_folder_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no images in"):
        load_photos(tmp_path, 5)
    with pytest.raises(SystemExit, match="no such folder"):
        image_paths(tmp_path / "missing")


def test_results_are_printed_and_replace_the_file_whole(tmp_path, capsys, monkeypatch):
    out = tmp_path / "results" / "x.md"
    write_results("| a |\n", out)
    assert out.read_text(encoding="utf-8") == "| a |\n" and "| a |" in capsys.readouterr().out
    monkeypatch.setattr(type(out), "replace", lambda self, target: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_results("| b |\n", out)
    assert out.read_text(encoding="utf-8") == "| a |\n"  # a failed write leaves the old results
