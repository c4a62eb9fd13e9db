"""Tier 1: RetinaFace-ResNet50 and the 98-point FAN (our code) in the official files' layout.

* Loading: full-size random weights saved as the official files are (``module.`` prefixed
  bare state dict for ``detection_Resnet50_Final.pth``, ``{"state_dict": ...}`` for
  ``alignment_WFLW_4HG.pth``) load strictly; a removed or reshaped key is refused with
  ``invalid_model`` naming it.
* Decoding on hand-made cases: anchors, box and landmark offsets, NMS, the heatmap peak, the
  98 -> 68 -> 5 mapping.
* Against the authors' code (facexlib, github.com/xinntao/facexlib), when a copy is present:
  export it outside the repo (``git archive HEAD | tar -x -C /work/ref/facexlib``) and set
  ``MYSPINBOT_FACEXLIB_REF`` to that folder; otherwise those tests are skipped with that
  reason. Their modules are imported from that path in this test only (the package's
  ``__init__`` files, which import unrelated parts, are bypassed; ``torchvision`` is needed by
  their RetinaFace). On identical random weights, our networks' outputs match theirs.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from myspinbot.faces import fan98_points as fp
from myspinbot.faces.facexlib_weights import load_fan98, load_retinaface
from myspinbot.faces.fan98 import FAN98
from myspinbot.faces.retinaface import RetinaFace
from myspinbot.faces.retinaface_decode import decode_boxes, decode_points, detect, priors
from myspinbot.lipsync.errors import InvalidModelError

REF = Path(os.environ["MYSPINBOT_FACEXLIB_REF"]) if os.environ.get("MYSPINBOT_FACEXLIB_REF") else None
HOW = ("facexlib's code is not present: export github.com/xinntao/facexlib outside the repo (git archive) "
       "and set MYSPINBOT_FACEXLIB_REF to it")


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights of moderate scale, random BN statistics (so activations stay finite)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 4:
                fan_in = t.shape[1] * t.shape[2] * t.shape[3]
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight"):  # BN scale
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def retina_state():
    return _randomize(RetinaFace(), 1).state_dict()


@pytest.fixture(scope="module")
def fan_state():
    return _randomize(FAN98(), 2).state_dict()


def _save_retina(state, path: Path) -> Path:
    torch.save({"module." + k: v for k, v in state.items()}, path)  # nn.DataParallel keys, as published
    return path


def _save_fan(state, path: Path) -> Path:
    torch.save({"state_dict": dict(state), "epoch": 1}, path)
    return path


# --- strict loading ---------------------------------------------------------------------------

def test_the_official_layouts_load_strictly(tmp_path, retina_state, fan_state):
    assert len(retina_state) == 456 and len(fan_state) == 1137
    net = load_retinaface(_save_retina(retina_state, tmp_path / "detection_Resnet50_Final.pth"))
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert all(torch.equal(net.state_dict()[k], v) for k, v in retina_state.items())
    fan = load_fan98(_save_fan(fan_state, tmp_path / "alignment_WFLW_4HG.pth"))
    assert all(torch.equal(fan.state_dict()[k], v) for k, v in fan_state.items())


def test_files_without_batch_norm_counters_load(tmp_path, fan_state):
    state = {k: v for k, v in fan_state.items() if not k.endswith("num_batches_tracked")}
    load_fan98(_save_fan(state, tmp_path / "old.pth"))


def test_a_removed_key_is_refused_by_name(tmp_path, retina_state):
    state = {k: v for k, v in retina_state.items() if k != "ssh2.conv7x7_3.0.weight"}
    with pytest.raises(InvalidModelError, match=r"^\[invalid_model\] .*missing 1 key\(s\): ssh2\.conv7x7_3\.0\.weight"):
        load_retinaface(_save_retina(state, tmp_path / "r.pth"))


def test_a_reshaped_or_extra_key_is_refused_by_name(tmp_path, fan_state):
    state = dict(fan_state)
    state["l3.weight"] = torch.zeros(68, 256, 1, 1)  # a 68-point head
    state["fc.weight"] = torch.zeros(1)
    with pytest.raises(InvalidModelError) as err:
        load_fan98(_save_fan(state, tmp_path / "f.pth"))
    assert "l3.weight: file [68, 256, 1, 1] vs model [99, 256, 1, 1]" in str(err.value)
    assert err.value.details["unexpected"] == ["fc.weight"]


def test_the_retinaface_file_is_not_a_fan_file(tmp_path, retina_state):
    with pytest.raises(InvalidModelError, match=r"not a FAN-98 .*missing 953 key\(s\): conv1\.conv\.weight.*unexpected 456 key\(s\): body\.conv1\.weight"):
        load_fan98(_save_retina(retina_state, tmp_path / "detection_Resnet50_Final.pth"))


# --- decoding on hand-made cases --------------------------------------------------------------

def test_priors_grid_order_and_sizes():
    p = priors(64, 32)  # strides 8/16/32: 8x4, 4x2, 2x1 cells, two sizes each
    assert p.shape == ((8 * 4 + 4 * 2 + 2 * 1) * 2, 4)
    np.testing.assert_allclose(p[0], [4 / 32, 4 / 64, 16 / 32, 16 / 64])
    np.testing.assert_allclose(p[1], [4 / 32, 4 / 64, 32 / 32, 32 / 64])
    np.testing.assert_allclose(p[2], [12 / 32, 4 / 64, 16 / 32, 16 / 64])  # next column
    np.testing.assert_allclose(p[8], [4 / 32, 12 / 64, 16 / 32, 16 / 64])  # next row
    np.testing.assert_allclose(p[64], [8 / 32, 8 / 64, 64 / 32, 64 / 64])  # first of stride 16
    assert len(priors(65, 33)) == (9 * 5 + 5 * 3 + 3 * 2) * 2  # ceil


def test_box_and_landmark_offsets():
    anchor = np.array([[0.5, 0.5, 0.2, 0.4]])
    np.testing.assert_allclose(decode_boxes(np.zeros((1, 4)), anchor), [[0.4, 0.3, 0.6, 0.7]])
    shifted = decode_boxes(np.array([[1.0, -1.0, np.log(2) / 0.2, 0.0]]), anchor)
    np.testing.assert_allclose(shifted, [[0.52 - 0.2, 0.46 - 0.2, 0.52 + 0.2, 0.46 + 0.2]])
    pts = decode_points(np.array([[0, 0, 1, 0, 0, 1, -1, 0, 0, -1.0]]), anchor)
    np.testing.assert_allclose(pts[0], [[0.5, 0.5], [0.52, 0.5], [0.5, 0.54], [0.48, 0.5], [0.5, 0.46]])


class _FixedHead(torch.nn.Module):
    """Stands for the network: given per-anchor outputs."""

    def __init__(self, offsets, probs, marks):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.out = (offsets[None], probs[None], marks[None])

    def forward(self, x):
        return self.out


def test_detect_thresholds_scales_and_suppresses():
    h, w = 64, 32
    a = len(priors(h, w))
    probs = torch.zeros(a, 2)
    probs[:, 0] = 1.0
    probs[0] = torch.tensor([0.01, 0.99])
    probs[1] = torch.tensor([0.02, 0.98])  # same cell, shrunk to anchor 0's box below: suppressed
    probs[40] = torch.tensor([0.04, 0.96])  # under the 0.97 threshold
    probs[70] = torch.tensor([0.005, 0.995])  # a stride-16 anchor elsewhere
    offsets, marks = torch.zeros(a, 4), torch.zeros(a, 10)
    offsets[1, 2:] = float(np.log(0.5) / 0.2)  # 32 px anchor -> 16 px box
    faces = detect(_FixedHead(offsets, probs, marks), np.zeros((h, w, 3), np.uint8))
    assert [round(f.score, 3) for f in faces] == [0.995, 0.99]
    anchor = priors(h, w)[0] * [w, h, w, h]
    np.testing.assert_allclose(faces[1].box, [anchor[0] - 8, anchor[1] - 8, anchor[0] + 8, anchor[1] + 8])
    np.testing.assert_allclose(faces[1].points, np.tile(anchor[:2], (5, 1)))


def test_heatmap_peak_quarter_shift_and_edges():
    heat = np.zeros((1, 3, 64, 64))
    heat[0, 0, 10, 20] = 1.0
    heat[0, 0, 10, 21] = 0.5  # right neighbour higher: +0.25 in x; vertical neighbours equal: 0
    heat[0, 1, 30, 5] = 1.0
    heat[0, 1, 29, 5] = 0.2  # upper neighbour higher: -0.25 in y
    heat[0, 2, 0, 63] = 1.0  # corner: not moved
    heat[0, 2, 0, 62] = 0.3
    heat[0, 2, 1, 63] = 0.6
    np.testing.assert_allclose(fp.heatmap_peaks(heat)[0], [[20.75, 10.5], [5.5, 30.25], [63.5, 0.5]])


def test_98_to_68_to_5():
    p98 = np.stack([np.arange(98.0), np.arange(98.0) * 10], axis=1)
    p68 = fp.to_68(p98)
    assert p68.shape == (68, 2)
    assert p68[16, 0] == 32 and p68[18, 0] == (34 + 41) / 2 and p68[26, 0] == 46
    assert p68[27, 0] == 51 and p68[35, 0] == 59 and p68[36, 0] == 60 and p68[38, 0] == 63
    assert p68[47, 0] == 75 and p68[48, 0] == 76 and p68[67, 0] == 95
    five = fp.to_5(p68)
    np.testing.assert_allclose(five[:, 0], [(60 + 64) / 2, (68 + 72) / 2, 54, 76, 82])
    np.testing.assert_allclose(five[:, 1], five[:, 0] * 10)


# --- against the authors' code -----------------------------------------------------------------

@pytest.fixture(scope="module")
def ref():
    """facexlib's RetinaFace, FAN and 98 -> 68 modules, imported from ``MYSPINBOT_FACEXLIB_REF``."""
    if REF is None or not (REF / "facexlib" / "alignment" / "awing_arch.py").is_file():
        pytest.skip(f"{HOW} (MYSPINBOT_FACEXLIB_REF={REF})")
    pytest.importorskip("torchvision", reason="facexlib's RetinaFace builds its backbone with torchvision")
    saved = {k: v for k, v in sys.modules.items() if k == "facexlib" or k.startswith("facexlib.")}
    for name, sub in (("facexlib", ""), ("facexlib.detection", "detection"), ("facexlib.alignment", "alignment")):
        stub = types.ModuleType(name)  # bypasses the package __init__ files (they import unrelated parts)
        stub.__path__ = [str(REF / "facexlib" / sub)]
        sys.modules[name] = stub
    try:
        mods = types.SimpleNamespace(
            retinaface=importlib.import_module("facexlib.detection.retinaface"),
            utils=importlib.import_module("facexlib.detection.retinaface_utils"),
            awing=importlib.import_module("facexlib.alignment.awing_arch"),
            convert=importlib.import_module("facexlib.alignment.convert_98_to_68_landmarks"))
    finally:
        for name in [k for k in sys.modules if k == "facexlib" or k.startswith("facexlib.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return mods


def test_retinaface_matches_facexlib(ref, retina_state):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's 'pretrained' deprecation
        theirs = ref.retinaface.RetinaFace(network_name="resnet50", device="cpu")
    theirs.load_state_dict(retina_state, strict=True)
    ours = RetinaFace()
    ours.load_state_dict(retina_state, strict=True)
    ours.eval()
    x = torch.randn(1, 3, 100, 140, generator=torch.Generator().manual_seed(3)) * 50
    with torch.no_grad():
        for a, b in zip(theirs(x), ours(x)):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    ref_priors = ref.utils.PriorBox(theirs.cfg, image_size=(100, 140)).forward().double().numpy()
    np.testing.assert_allclose(priors(100, 140), ref_priors, rtol=1e-6, atol=1e-7)
    loc = torch.randn(len(ref_priors), 10, generator=torch.Generator().manual_seed(4))
    pri = torch.from_numpy(ref_priors).float()
    np.testing.assert_allclose(decode_boxes(loc[:, :4].double().numpy(), ref_priors),
                               ref.utils.decode(loc[:, :4], pri, [0.1, 0.2]).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(decode_points(loc.double().numpy(), ref_priors).reshape(-1, 10),
                               ref.utils.decode_landm(loc, pri, [0.1, 0.2]).numpy(), rtol=1e-5, atol=1e-6)


def test_detect_matches_facexlib_detect_faces(ref, retina_state):
    """The whole detection (mean, decode, threshold, NMS) on one image; the score threshold is
    lowered to 0.5 so that random weights yield several faces to compare."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref.retinaface.RetinaFace(network_name="resnet50", device="cpu")
    theirs.load_state_dict(retina_state, strict=True)
    ours = RetinaFace()
    ours.load_state_dict(retina_state, strict=True)
    ours.eval()
    rgb = np.random.default_rng(5).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = theirs.detect_faces(rgb[..., ::-1].copy(), conf_threshold=0.5, nms_threshold=0.4)
    got = detect(ours, rgb, score_threshold=0.5, nms_threshold=0.4)
    assert len(got) == len(expected) > 0
    for face, row in zip(got, expected):
        np.testing.assert_allclose(face.box, row[:4], rtol=1e-4, atol=1e-3)
        assert abs(face.score - row[4]) < 1e-5
        np.testing.assert_allclose(face.points.reshape(-1), row[5:], rtol=1e-4, atol=1e-3)


def test_fan_matches_facexlib(ref, fan_state, monkeypatch):
    theirs = ref.awing.FAN(num_modules=4, num_landmarks=98, device="cpu")
    theirs.load_state_dict(fan_state, strict=True)
    theirs.eval()
    ours = FAN98()
    ours.load_state_dict(fan_state, strict=True)
    ours.eval()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected, _ = theirs(x)
        got = ours(x)
    assert len(got) == len(expected) == 4
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    # get_landmarks on a crop (facexlib reverses the channels it is given; SadTalker gives RGB)
    crop = np.random.default_rng(7).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    monkeypatch.setattr(np, "float", float, raising=False)  # their calculate_points uses np.float
    with torch.no_grad():
        ref_points = theirs.get_landmarks(crop)
        ours_points = fp.landmarks98(ours, crop, np.array([0.0, 0.0, 70.0, 90.0]))
        heat = ours(fp.crop_input(crop))[-1][:, :-1].numpy()
    peaks = heat.reshape(98, -1).argmax(axis=1)
    inside = (peaks % 64 > 0) & (peaks % 64 < 63) & (peaks // 64 > 1) & (peaks // 64 < 62)
    assert inside.sum() > 40  # the edge handling differs on purpose; compare the inner peaks
    np.testing.assert_allclose(ours_points[inside, 0], ref_points[inside, 0], atol=1e-3)
    # upstream reads fixed cells for every point's vertical neighbours once any peak is near the
    # top or bottom row (random weights put some there): y then differs by at most half a cell
    cell = 90 / 64
    assert np.abs(ours_points[inside, 1] - ref_points[inside, 1]).max() <= 0.5 * cell + 1e-3
    assert np.abs(ours_points - ref_points).max() <= 0.5 * cell + 1e-3


def test_heatmap_decoding_matches_facexlib_inside_the_map(ref, monkeypatch):
    monkeypatch.setattr(np, "float", float, raising=False)
    rng = np.random.default_rng(8)
    heat = rng.random((2, 98, 64, 64)) * 0.5
    for b in range(2):
        for n in range(98):
            r, c = rng.integers(2, 62, size=2)
            heat[b, n, r, c] = 2.0
    np.testing.assert_allclose(fp.heatmap_peaks(heat), ref.awing.calculate_points(heat))


def test_98_to_68_matches_facexlib(ref):
    p98 = np.random.default_rng(9).random((98, 2)) * 200
    np.testing.assert_allclose(fp.to_68(p98), ref.convert.landmark_98_to_68(p98), rtol=1e-6, atol=1e-4)
