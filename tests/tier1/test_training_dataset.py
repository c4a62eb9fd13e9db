"""Dataset preparation for character LoRAs on the real portrait fixture: face crops, photos
without a face and near-duplicates dropped with their reason, flips, captions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from myspinbot.errors import InvalidInputError, NoFaceDetectedError
from myspinbot.training import (DROP_DUPLICATE, DROP_NO_FACE, DatasetSettings, captions_for, crop_face, dhash,
                                face_crop_box, find_face, hash_distance, prepare_dataset)


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    bgr = cv2.imread(str(fixtures_dir / "portrait_astronaut.png"), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _gradient(h: int = 384, w: int = 512) -> np.ndarray:
    """A plain colour gradient: a photo with no face."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90.0)], -1).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int = 60) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _skin_fraction(crop: np.ndarray) -> float:
    """Share of skin-toned pixels (YCrCb box) in the centre ninth of a crop."""
    h, w = crop.shape[:2]
    centre = cv2.cvtColor(np.ascontiguousarray(crop[h // 3: 2 * h // 3, w // 3: 2 * w // 3]), cv2.COLOR_RGB2YCrCb)
    cr, cb = centre[..., 1].astype(int), centre[..., 2].astype(int)
    return float(((cr > 135) & (cr < 180) & (cb > 85) & (cb < 135)).mean())


def test_the_crop_is_square_at_the_resolution_and_centred_on_the_face(portrait):
    crop, box = crop_face(portrait, DatasetSettings(resolution=256, margin=0.6))
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    x1, y1, x2, y2 = box
    assert x2 - x1 == y2 - y1 and 0 <= x1 and 0 <= y1 and x2 <= 512 and y2 <= 512
    fx1, fy1, fx2, fy2 = find_face(portrait)
    assert x1 <= fx1 and y1 <= fy1 and fx2 <= x2 and fy2 <= y2  # the whole face is inside
    assert x2 - x1 < 512  # a crop, not the photo
    assert abs((x1 + x2) / 2 - (fx1 + fx2) / 2) <= 2  # horizontally centred (room on both sides)
    assert _skin_fraction(crop) > 0.5  # the middle of the crop is the face
    assert _skin_fraction(cv2.resize(portrait, (256, 256))) < _skin_fraction(crop)


def test_a_shifted_crop_of_the_photo_gives_the_same_face_crop(portrait):
    dy, dx = 40, 0
    moved = np.ascontiguousarray(portrait[dy:, dx:])
    _, box = crop_face(portrait, DatasetSettings(resolution=128))
    _, moved_box = crop_face(moved, DatasetSettings(resolution=128))
    face, moved_face = find_face(portrait), find_face(moved)
    # the detector follows the face (within a few px of Haar jitter) ...
    assert all(abs(a - (b + o)) <= 6 for a, b, o in zip(face, moved_face, (dx, dy, dx, dy)))
    # ... and the crop follows it where it is not held back by the photo's edge
    assert abs((box[0] + box[2]) - (moved_box[0] + moved_box[2] + 2 * dx)) <= 12


def test_the_square_moves_inside_the_photo_and_shrinks_only_when_it_cannot_fit():
    assert face_crop_box((100, 200, 3), (0, 10, 40, 50), margin=0.5) == (0, 0, 80, 80)
    assert face_crop_box((100, 200, 3), (160, 60, 200, 100), margin=0.5) == (120, 20, 200, 100)
    assert face_crop_box((100, 200, 3), (60, 10, 140, 90), margin=1.0) == (50, 0, 150, 100)


def test_a_photo_without_a_face_is_refused_by_crop_face():
    with pytest.raises(NoFaceDetectedError) as err:
        crop_face(_gradient())
    assert str(err.value).startswith("[no_face_detected] ")


def test_no_face_and_duplicates_are_dropped_and_reported(portrait):
    photos = [portrait, _gradient(), portrait.copy(), _jpeg(portrait), np.ascontiguousarray(portrait[:, ::-1])]
    names = ["astronaut.png", "gradient.png", "copy.png", "recompressed.jpg", "mirrored.png"]
    ds = prepare_dataset(photos, names, DatasetSettings(resolution=128))
    assert ds.kept == [0, 4]  # the mirrored photo is another view, not a duplicate
    assert [(d.index, d.name, d.reason) for d in ds.dropped] == [
        (1, "gradient.png", DROP_NO_FACE), (2, "copy.png", DROP_DUPLICATE), (3, "recompressed.jpg", DROP_DUPLICATE)]
    assert "no face found" in ds.dropped[0].message
    assert "near-duplicate of astronaut.png" in ds.dropped[1].message
    assert len(ds.images) == 2 and ds.sources == [0, 4] and ds.flipped == [False, False]
    report = ds.report()
    assert report.splitlines()[0].startswith("2 of 5 photos kept")
    assert "dropped gradient.png: no face found" in report and "dropped copy.png: near-duplicate" in report


def test_flip_adds_a_mirrored_copy_after_each_crop(portrait):
    ds = prepare_dataset([portrait], settings=DatasetSettings(resolution=128, flip=True))
    assert ds.sources == [0, 0] and ds.flipped == [False, True]
    assert np.array_equal(ds.images[1], ds.images[0][:, ::-1])
    assert ds.images[1].flags["C_CONTIGUOUS"]


def test_a_large_photo_is_searched_downscaled_and_cropped_at_full_size(portrait):
    big = cv2.resize(portrait, (2560, 2560), interpolation=cv2.INTER_CUBIC)  # 5x: past DETECT_SIDE
    face, big_face = find_face(portrait), find_face(big)
    assert all(abs(b - 5 * a) <= 5 * 8 for a, b in zip(face, big_face)), (face, big_face)
    crop, box = crop_face(big, DatasetSettings(resolution=256))
    assert crop.shape == (256, 256, 3) and box[2] - box[0] > 1024  # taken from the full-size photo
    assert _skin_fraction(crop) > 0.5


def test_photos_may_come_from_a_generator(portrait):
    def photos():
        yield portrait
        yield _gradient()

    ds = prepare_dataset(photos(), ["p.png", "wall.png"], DatasetSettings(resolution=64))
    assert ds.kept == [0] and [d.name for d in ds.dropped] == ["wall.png"]
    with pytest.raises(InvalidInputError):
        prepare_dataset(photos(), ["only one"], DatasetSettings(resolution=64))
    with pytest.raises(InvalidInputError):
        prepare_dataset(photos(), ["a", "b", "c"], DatasetSettings(resolution=64))


def test_a_negative_duplicate_distance_keeps_every_photo(portrait):
    ds = prepare_dataset([portrait, portrait.copy()], settings=DatasetSettings(resolution=128, duplicate_distance=-1))
    assert ds.kept == [0, 1] and not ds.dropped


def test_dhash_is_stable_under_recompression_and_differs_for_another_image(portrait):
    crop, _ = crop_face(portrait, DatasetSettings(resolution=256))
    assert hash_distance(dhash(crop), dhash(_jpeg(crop))) <= 4
    assert hash_distance(dhash(crop), dhash(np.ascontiguousarray(crop[:, ::-1]))) > 16
    assert 0 <= dhash(crop) < 2 ** 64


def test_settings_and_inputs_are_checked(portrait):
    with pytest.raises(InvalidInputError):
        DatasetSettings(resolution=100)
    with pytest.raises(InvalidInputError):
        prepare_dataset([portrait], names=["a", "b"])
    with pytest.raises(InvalidInputError):
        prepare_dataset([portrait.astype(np.float32)])


def test_captions_default_template_per_photo_lines_and_trigger():
    assert captions_for(2, [0, 0, 1], "zxq person") == ["a photo of zxq person"] * 3
    assert captions_for(2, [1], "zxq", "{trigger} smiling, studio light") == ["zxq smiling, studio light"]
    assert captions_for(3, [0, 2], "zxq", "a portrait\n\n{trigger} in a spacesuit\nzxq outdoors") == [
        "zxq, a portrait", "zxq outdoors"]
    with pytest.raises(InvalidInputError):
        captions_for(3, [0], "zxq", "one\ntwo")
    with pytest.raises(InvalidInputError):
        captions_for(1, [0], "  ")
