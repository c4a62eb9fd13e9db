"""Tier 2: the Upscale Video node with ComfyUI's own modules in-process (``--cpu``; no server).

A tiny random ESRGAN (RRDBNet) is built with spandrel's own architecture class, saved as
``.pth`` and ``.safetensors`` in a scratch ``upscale_models`` folder and loaded by core's
``UpscaleModelLoader`` (spandrel's ``ModelLoader`` + a ``CoreModelPatcher``), exactly as a
workflow would. Then the node's ``execute`` runs on a short video with audio and on IMAGE
batches.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
if not COMFYUI_DIR:
    pytest.skip("COMFYUI_DIR is not set", allow_module_level=True)

import torch  # noqa: E402

if COMFYUI_DIR not in sys.path:
    sys.path.insert(0, COMFYUI_DIR)

from comfy.cli_args import args as comfy_args  # noqa: E402

comfy_args.cpu = True  # before comfy.model_management is imported: the --cpu code path

import comfy.model_management as model_management  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402
import safetensors.torch  # noqa: E402
from comfy_api.latest import InputImpl  # noqa: E402
from comfy_extras.nodes_upscale_model import UpscaleModelLoader  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402

from myspinbot.errors import InvalidInputError  # noqa: E402
from myspinbot.nodes.upscale_video import UpscaleVideo  # noqa: E402
from myspinbot.video import Mp4Writer, iter_video_frames, probe_media  # noqa: E402

W, H, FPS, N, RATE = 48, 32, 25.0, 8, 44100


@pytest.fixture(scope="module")
def comfy_dirs(tmp_path_factory):
    """Scratch ``upscale_models`` and temp folders registered with ComfyUI's folder_paths."""
    root = tmp_path_factory.mktemp("comfy_upscale")
    models = root / "upscale_models"
    models.mkdir()
    temp = root / "temp"
    temp.mkdir()
    old_temp = folder_paths.get_temp_directory()
    old_paths = folder_paths.folder_names_and_paths.get("upscale_models")
    folder_paths.add_model_folder_path("upscale_models", str(models), is_default=True)
    folder_paths.set_temp_directory(str(temp))
    yield models, temp
    folder_paths.set_temp_directory(old_temp)
    if old_paths is not None:
        folder_paths.folder_names_and_paths["upscale_models"] = old_paths


def _save_esrgan(folder: Path, name: str, scale: int, seed: int) -> dict:
    torch.manual_seed(seed)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    torch.save(state, folder / f"{name}.pth")
    safetensors.torch.save_file(state, str(folder / f"{name}.safetensors"))
    return state


@pytest.fixture(scope="module")
def models(comfy_dirs):
    """core's UpscaleModelLoader on the tiny x2 / x4 ESRGANs (``.pth`` and ``.safetensors``)."""
    folder, _ = comfy_dirs
    _save_esrgan(folder, "tiny_esrgan_x2", 2, 1)
    _save_esrgan(folder, "tiny_esrgan_x4", 4, 2)
    loaded = {}
    for name in ("tiny_esrgan_x2.pth", "tiny_esrgan_x2.safetensors", "tiny_esrgan_x4.pth", "tiny_esrgan_x4.safetensors"):
        assert name in folder_paths.get_filename_list("upscale_models")
        loaded[name] = UpscaleModelLoader.execute(name).result[0]
    return loaded


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 550 * t)]).astype(np.float32)


def _frame(i: int, w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, (i * 30) % 256)], -1).astype(np.uint8)
    frame[:, (i * 3) % w] = 255
    return frame


def _write_clip(path: Path, w: int, h: int, n: int, audio: bool = True) -> Path:
    with Mp4Writer(path, w, h, FPS, _tone(n / FPS + 0.1) if audio else None, RATE if audio else None, crf=12) as writer:
        for i in range(n):
            writer.write(_frame(i, w, h))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", W, H, N)


def _images(b: int, h: int, w: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([_frame(i, w, h) for i in range(b)])).float() / 255.0


def _audio_packets(path) -> list[tuple]:
    with av.open(str(path)) as c:
        return [(p.pts, p.dts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def _run(model, **kwargs):
    out = UpscaleVideo.execute(upscale_model=model, **kwargs)
    video, images = out.result
    return video, images


def _video_path(video) -> str:
    source = video.get_stream_source()
    assert isinstance(source, str) and os.path.isfile(source)
    return source


def test_schema():
    schema = UpscaleVideo.define_schema()
    assert schema.node_id == "MySpinBotUpscaleVideo" and schema.display_name == "MySpinBot Upscale Video"
    assert schema.category == "MySpinBot/video"
    assert [i.id for i in schema.inputs][:6] == ["upscale_model", "video", "images", "output_scale", "tile", "overlap"]
    info = UpscaleVideo.INPUT_TYPES()
    assert info["required"]["upscale_model"][0] == "UPSCALE_MODEL"
    assert set(info["optional"]) >= {"video", "images"}
    assert tuple(UpscaleVideo.RETURN_TYPES) == ("VIDEO", "IMAGE")


def test_pth_and_safetensors_load_the_same_model(models):
    for scale in (2, 4):
        pth, st = models[f"tiny_esrgan_x{scale}.pth"], models[f"tiny_esrgan_x{scale}.safetensors"]
        assert pth.scale == st.scale == scale and pth.architecture.id == "ESRGAN"
        x = torch.rand(1, 3, 16, 20)
        assert torch.equal(pth(x), st(x))


@pytest.mark.parametrize("name", ["tiny_esrgan_x2.pth", "tiny_esrgan_x4.safetensors"])
def test_video_native_scale_keeps_frames_fps_and_audio(models, clip, comfy_dirs, name):
    model = models[name]
    scale = model.scale
    video, first = _run(model, video=InputImpl.VideoFromFile(str(clip)))
    path = _video_path(video)
    assert Path(path).parent == comfy_dirs[1] / "myspinbot"  # ComfyUI's temp folder
    src, dst = probe_media(clip), probe_media(path)
    assert (dst["video"]["width"], dst["video"]["height"]) == (W * scale, H * scale)
    assert dst["video"]["frame_count"] == N and dst["video"]["fps"] == pytest.approx(FPS)
    assert dst["audio"] == src["audio"]
    assert _audio_packets(path) == _audio_packets(clip)  # audio packets remuxed untouched
    # IMAGE output for a video: its first upscaled frame.
    assert tuple(first.shape) == (1, H * scale, W * scale, 3)
    # With a tile larger than the frame, the frame is the model's own output (up to H.264 loss).
    src_frame = next(iter_video_frames(clip))
    with torch.no_grad():
        direct = model(torch.from_numpy(src_frame).movedim(-1, 0)[None].float() / 255.0)[0].movedim(0, -1)
    assert torch.allclose(first[0], direct, atol=1e-5)
    out_frame = next(iter_video_frames(path)).astype(np.float32) / 255.0
    assert np.abs(out_frame - direct.numpy()).mean() < 0.03
    assert [p.name for p in (comfy_dirs[1] / "myspinbot").iterdir() if p.name.startswith(".")] == []


def test_video_output_scale(models, clip):
    video, first = _run(models["tiny_esrgan_x4.pth"], video=InputImpl.VideoFromFile(str(clip)), output_scale=2.0)
    info = probe_media(_video_path(video))["video"]
    assert (info["width"], info["height"]) == (W * 2, H * 2) and info["frame_count"] == N
    assert tuple(first.shape) == (1, H * 2, W * 2, 3)


def test_images_native_and_output_scale(models):
    images = _images(3, 20, 28)
    for name, output_scale, expect in [
        ("tiny_esrgan_x2.safetensors", 0.0, (40, 56)),
        ("tiny_esrgan_x4.pth", 0.0, (80, 112)),
        ("tiny_esrgan_x4.pth", 2.0, (40, 56)),
        ("tiny_esrgan_x2.pth", 1.5, (30, 42)),
        ("tiny_esrgan_x4.safetensors", 1.25, (25, 35)),  # odd sides: IMAGE exact, VIDEO cropped to even
    ]:
        video, out = _run(models[name], images=images, output_scale=output_scale)
        assert tuple(out.shape) == (3, *expect, 3), (name, output_scale)
        assert out.dtype == torch.float32 and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        info = probe_media(_video_path(video))
        assert info["audio_streams"] == 0 and info["video"]["frame_count"] == 3
        assert (info["video"]["height"], info["video"]["width"]) == (expect[0] - expect[0] % 2, expect[1] - expect[1] % 2)
        assert info["video"]["fps"] == pytest.approx(25.0)


def test_images_match_core_image_upscale_with_model(models):
    """Same tiles, same overlap, same model call as core's ImageUpscaleWithModel."""
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel

    model = models["tiny_esrgan_x2.pth"]
    images = _images(1, 560, 40)  # taller than the 512 tile: really tiled (2 tiles)
    core = ImageUpscaleWithModel.execute(model, images).result[0]
    _, ours = _run(model, images=images)
    assert ours.shape == core.shape == (1, 1120, 80, 3)
    assert torch.allclose(ours, core, atol=1e-6)
    small = _images(2, 40, 56)  # fits one tile: the node calls the model directly, as tiled_scale does
    core = ImageUpscaleWithModel.execute(model, small).result[0]
    _, ours = _run(model, images=small)
    assert ours.shape == core.shape == (2, 80, 112, 3)
    assert torch.allclose(ours, core, atol=1e-6)


def test_the_model_gets_core_channels_last_layout(models, clip):
    """Every frame reaches the model as core hands it an IMAGE batch: channels-last with canonical
    strides (a stride-3 batch dimension makes PyTorch run the net NCHW, #15's 1.5x slowdown)."""
    model = models["tiny_esrgan_x2.safetensors"]
    seen: list = []
    hook = model.model.register_forward_pre_hook(lambda _m, args: seen.append((tuple(args[0].shape), args[0].stride())))
    try:
        _run(model, video=InputImpl.VideoFromFile(str(clip)))
        _run(model, images=_images(2, H, W))
    finally:
        hook.remove()
    assert len(seen) == N + 2
    for (n, c, h, w), stride in seen:
        assert stride == (c * h * w, 1, w * c, c)


def _oom_above(model, monkeypatch, limit: int, calls: list):
    """Make the model raise torch.OutOfMemoryError on any tile with a side above ``limit``."""
    net = model.model
    original = type(net).forward

    def forward(x):
        calls.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (forced by the test)")
        return original(net, x)

    monkeypatch.setattr(net, "forward", forward)


def test_forced_oom_halves_tile_and_completes_images(models, monkeypatch, caplog):
    model = models["tiny_esrgan_x2.pth"]
    calls: list = []
    _oom_above(model, monkeypatch, 128, calls)
    images = _images(2, 150, 136)  # fits one 512 or 256 tile: those OOM; 128 tiles pass
    with caplog.at_level("WARNING", logger="myspinbot"):
        _, out = _run(model, images=images, tile=512, overlap=32)
    assert tuple(out.shape) == (2, 300, 272, 3)
    assert calls[0] == (150, 136) and calls[1] == (150, 136)  # 512 -> OOM, 256 -> OOM
    assert all(max(c) <= 128 for c in calls[2:])  # then 128 for this frame and every later one
    assert sum("out of memory with tile" in r.getMessage() for r in caplog.records) == 2
    # The result equals a run that used tile 128 from the start.
    monkeypatch.undo()
    _, expected = _run(model, images=images, tile=128, overlap=32)
    assert torch.allclose(out, expected, atol=1e-6)


def test_forced_oom_on_first_video_frame_only(models, monkeypatch, tmp_path):
    model = models["tiny_esrgan_x2.pth"]
    clip = _write_clip(tmp_path / "big.mp4", 144, 136, 3)
    calls: list = []
    net = model.model
    original = type(net).forward

    def forward(x):  # OOM only on the very first call (tile > 128), like a cold GPU
        calls.append(tuple(x.shape[-2:]))
        if len(calls) == 1 and max(x.shape[-2:]) > 128:
            raise torch.OutOfMemoryError("CUDA out of memory (forced by the test)")
        return original(net, x)

    monkeypatch.setattr(net, "forward", forward)
    video, first = _run(model, video=InputImpl.VideoFromFile(str(clip)), tile=256, overlap=16)
    info = probe_media(_video_path(video))
    assert (info["video"]["width"], info["video"]["height"]) == (288, 272) and info["video"]["frame_count"] == 3
    assert calls[0] == (136, 144)  # the whole frame in one 256 tile: OOM
    assert all(max(c) <= 128 for c in calls[1:])  # tile 128 from then on, remembered across frames
    assert len(calls) == 1 + 3 * 4  # then 2x2 tiles of 128 per frame
    assert _audio_packets(_video_path(video)) == _audio_packets(clip)


def test_oom_below_min_tile_raises(models, monkeypatch):
    model = models["tiny_esrgan_x2.pth"]
    calls: list = []
    _oom_above(model, monkeypatch, 0, calls)  # every call OOMs
    with pytest.raises(torch.OutOfMemoryError):
        _run(model, images=_images(1, 300, 300), tile=512)
    assert max(calls[-1]) <= 128  # it got down to tile 128 before giving up


def test_progress_per_frame_without_executing_context(models, clip, monkeypatch):
    seen = []
    original = comfy.utils.ProgressBar.update_absolute

    def update_absolute(self, value, total=None, preview=None):
        seen.append((value, total))
        return original(self, value, total, preview)

    monkeypatch.setattr(comfy.utils.ProgressBar, "update_absolute", update_absolute)
    _run(models["tiny_esrgan_x2.pth"], video=InputImpl.VideoFromFile(str(clip)), images=_images(2, 16, 16))
    done = [v for v, _ in seen]
    # 2 images, then the N video frames: one update per frame (plus the 0 at each start).
    assert done == [0, 1, 2, 2] + list(range(3, N + 3))
    assert seen[-1] == (N + 2, N + 2)


def test_interrupt_stops_and_leaves_no_file(models, clip, comfy_dirs, monkeypatch):
    out_dir = comfy_dirs[1] / "myspinbot"
    before = set(os.listdir(out_dir)) if out_dir.is_dir() else set()
    frames = []
    original = UpscaleVideo._upscale_video

    real_call = models["tiny_esrgan_x2.pth"].model.forward

    def forward(x):
        frames.append(1)
        if len(frames) == 3:
            model_management.interrupt_current_processing(True)
        return real_call(x)

    monkeypatch.setattr(models["tiny_esrgan_x2.pth"].model, "forward", forward)
    try:
        with pytest.raises(model_management.InterruptProcessingException):
            _run(models["tiny_esrgan_x2.pth"], video=InputImpl.VideoFromFile(str(clip)))
    finally:
        model_management.interrupt_current_processing(False)
    assert len(frames) == 3  # stopped right after the third frame
    after = set(os.listdir(out_dir)) if out_dir.is_dir() else set()
    assert after == before
    assert original is UpscaleVideo._upscale_video


def test_trimmed_video_is_upscaled_via_a_temp_copy(models, clip, comfy_dirs):
    trimmed = InputImpl.VideoFromFile(str(clip), start_time=0.08, duration=0.16)
    expected = trimmed.get_frame_count()
    video, _ = _run(models["tiny_esrgan_x2.pth"], video=trimmed)
    info = probe_media(_video_path(video))["video"]
    assert (info["width"], info["height"]) == (2 * W, 2 * H)
    assert info["frame_count"] == expected and 0 < expected < N
    assert not any(p.name.startswith("upscale_src") for p in (comfy_dirs[1] / "myspinbot").iterdir())


def test_needs_video_or_images(models):
    with pytest.raises(InvalidInputError, match="video or images"):
        _run(models["tiny_esrgan_x2.pth"])


def test_in_memory_video_components(models, comfy_dirs):
    """A VIDEO that is not file-backed (e.g. core's Create Video) is written to a temp MP4 first."""
    from fractions import Fraction

    from comfy_api.latest import Types

    frames = _images(6, 24, 32)
    t = torch.arange(RATE // 2) / RATE
    audio = {"waveform": (0.3 * torch.sin(2 * torch.pi * 440 * t)).reshape(1, 1, -1), "sample_rate": RATE}
    video_in = InputImpl.VideoFromComponents(Types.VideoComponents(images=frames, frame_rate=Fraction(12), audio=audio))
    video, first = _run(models["tiny_esrgan_x2.pth"], video=video_in)
    info = probe_media(_video_path(video))
    assert (info["video"]["width"], info["video"]["height"]) == (64, 48) and info["video"]["frame_count"] == 6
    assert info["video"]["fps"] == pytest.approx(12.0)
    assert info["audio"]["sample_rate"] == RATE and info["audio"]["duration_s"] == pytest.approx(0.5, abs=0.05)
    assert tuple(first.shape) == (1, 48, 64, 3)
    assert not any(p.name.startswith("upscale_src") for p in (comfy_dirs[1] / "myspinbot").iterdir())


# -- face restoration pass ------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_model(comfy_dirs):
    """A random GFPGAN v1.4 (spandrel's architecture class), loaded by core's UpscaleModelLoader."""
    from spandrel.architectures.GFPGAN import GFPGAN

    folder, _ = comfy_dirs
    torch.manual_seed(3)
    net = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False,
                 num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    torch.save({"params_ema": {k: v.contiguous() for k, v in net.state_dict().items()}}, folder / "GFPGANv1.4.pth")
    return UpscaleModelLoader.execute("GFPGANv1.4.pth").result[0]


@pytest.fixture(scope="module")
def portrait_clip(tmp_path_factory, fixtures_dir) -> Path:
    from PIL import Image

    still = np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB").resize((192, 192)))
    path = tmp_path_factory.mktemp("portrait_clip") / "talk.mp4"
    with Mp4Writer(path, 192, 192, FPS, _tone(3 / FPS + 0.1), RATE, crf=12) as writer:
        for i in range(3):
            writer.write(np.roll(still, i, axis=1))
    return path


def _face_region_change(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean abs difference of two frames inside the central face area and in the bottom corners."""
    h, w = a.shape[:2]
    diff = np.abs(a.astype(int) - b.astype(int))
    face = diff[int(0.05 * h):int(0.4 * h), int(0.3 * w):int(0.6 * w)].mean()
    corners = np.concatenate([diff[-h // 6:, : w // 6], diff[-h // 6:, -w // 6:]]).mean()
    return face, corners


def test_face_restoration_pass_on_a_video(models, face_model, portrait_clip):
    source = InputImpl.VideoFromFile(str(portrait_clip))
    plain, _ = _run(models["tiny_esrgan_x2.pth"], video=source)
    restored, first = _run(models["tiny_esrgan_x2.pth"], video=InputImpl.VideoFromFile(str(portrait_clip)),
                           face_restore_model=face_model, face_restore_strength=1.0)
    plain_frames = list(iter_video_frames(_video_path(plain)))
    restored_frames = list(iter_video_frames(_video_path(restored)))
    assert len(restored_frames) == len(plain_frames) == 3
    assert restored_frames[0].shape == (384, 384, 3) and tuple(first.shape) == (1, 384, 384, 3)
    for a, b in zip(plain_frames, restored_frames):
        face, corners = _face_region_change(a, b)
        assert face > 10 * max(corners, 0.5), (face, corners)  # the face is replaced, the rest untouched
    assert _audio_packets(_video_path(restored)) == _audio_packets(portrait_clip)


def test_face_restoration_strength_zero_keeps_the_upscaled_face(models, face_model, fixtures_dir):
    from PIL import Image

    still = np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB").resize((192, 192)))
    images = torch.from_numpy(still)[None].float() / 255.0
    _, plain = _run(models["tiny_esrgan_x2.pth"], images=images)
    _, zero = _run(models["tiny_esrgan_x2.pth"], images=images, face_restore_model=face_model, face_restore_strength=0.0)
    _, full = _run(models["tiny_esrgan_x2.pth"], images=images, face_restore_model=face_model)
    assert tuple(full.shape) == tuple(plain.shape) == (1, 384, 384, 3)
    assert (zero - plain).abs().max() < 1 / 255 + 1e-6  # unchanged up to the uint8 paste
    face, corners = _face_region_change((plain[0] * 255).byte().numpy(), (full[0] * 255).byte().numpy())
    assert face > 10 * max(corners, 0.5)


def test_an_upscale_model_is_refused_as_face_model(models, clip):
    with pytest.raises(InvalidInputError, match="face restoration model"):
        _run(models["tiny_esrgan_x2.pth"], video=InputImpl.VideoFromFile(str(clip)),
             face_restore_model=models["tiny_esrgan_x4.pth"])
