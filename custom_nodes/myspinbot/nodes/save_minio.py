"""Node "MySpinBot Save to MinIO": VIDEO / AUDIO / IMAGE / a file → S3-compatible storage.

The media is first written into ComfyUI's output folder (kept there in every case), then
uploaded with the ``storage`` engine. Credentials come from ``MYSPINBOT_S3_*`` environment
variables or the ComfyUI settings ``MySpinBot.S3.*``, never from an input, so they are never
part of a workflow or a job. The UI output carries, under ``myspinbot_storage``, one block per
uploaded file (``name``, ``local_path``, ``uri``, ``presigned_url``, ``status`` =
``stored``/``pending``, ``warning``, and the retry record while pending) for the job service.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import folder_paths
from comfy_api.latest import io

from ..errors import InvalidInputError
from ..storage import DEFAULT_KEY_TEMPLATE, UI_KEY, StorageOutcome, load_settings, prompt_sha256, store_output
from ..storage.config import comfy_settings_path
from ..storage.keys import extension_of
from ..storage.media import AUDIO_FORMATS, allocate_output_path, copy_file, resolve_within, write_audio, write_png
from ._convert import audio_to_numpy, image_to_uint8
from ._progress import progress_callback

MAX_PRESIGN_S = 7 * 24 * 3600


class SaveToMinIO(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotSaveToMinIO",
            display_name="MySpinBot Save to MinIO",
            category="MySpinBot/storage",
            description="Saves one VIDEO, AUDIO, IMAGE batch or file into the output folder and uploads it to "
            "S3-compatible storage (MinIO, AWS S3, R2). Connection and credentials: MYSPINBOT_S3_ENDPOINT, "
            "MYSPINBOT_S3_ACCESS_KEY, MYSPINBOT_S3_SECRET_KEY (environment) or the MySpinBot.S3.* settings. "
            "If storage stays down the local file is kept and the upload is marked pending (or the run fails "
            "when 'mandatory' is on).",
            is_output_node=True,
            inputs=[
                io.Video.Input("video", optional=True, tooltip="A video to store (its file is copied as is when possible)."),
                io.Audio.Input("audio", optional=True, tooltip="Audio to store, written as WAV or FLAC."),
                io.Image.Input("images", optional=True, tooltip="Images to store as PNG, one object per image."),
                io.String.Input("file_path", default="", optional=True,
                                tooltip="A file in ComfyUI's output, input or temp folder (relative paths: output folder)."),
                io.String.Input("bucket", default="", tooltip="Bucket; empty uses MYSPINBOT_S3_BUCKET."),
                io.String.Input("key_template", default=DEFAULT_KEY_TEMPLATE,
                                tooltip="Object key: {job_id} {name} {ext} {date} {yyyy} {mm} {dd} {time} {uuid} {pipeline}."),
                io.String.Input("name", default="output", tooltip="The output's name ({name} in the key)."),
                io.Boolean.Input("create_bucket", default=False, tooltip="Create the bucket if it does not exist."),
                io.Int.Input("presign_expiry_s", default=3600, min=0, max=MAX_PRESIGN_S,
                             tooltip="Lifetime of the presigned GET URL in seconds (0: no URL)."),
                io.Boolean.Input("mandatory", default=False,
                                 tooltip="Fail the run when the upload fails; off: keep the file locally, upload pending."),
                io.String.Input("filename_prefix", default="myspinbot/storage/output", optional=True,
                                tooltip="Where the local copy goes in the output folder."),
                io.Combo.Input("audio_format", options=list(AUDIO_FORMATS), default="wav", optional=True,
                               tooltip="File format for an AUDIO input."),
                io.String.Input("content_type", default="", optional=True, tooltip="MIME type; empty: from the extension."),
                io.String.Input("pipeline", default="", optional=True, tooltip="Pipeline name for the object's metadata."),
            ],
            outputs=[
                io.String.Output("uri", tooltip="s3://bucket/key (pending: the local file's path). One line per file."),
                io.String.Output("presigned_url", tooltip="Presigned GET URL (empty when pending). One line per file."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs) -> str:
        return uuid.uuid4().hex  # every queued run stores again (a retry after an outage included)

    @classmethod
    def execute(cls, bucket: str, key_template: str, name: str, create_bucket: bool, presign_expiry_s: int,
                mandatory: bool, video=None, audio=None, images=None, file_path: str = "",
                filename_prefix: str = "myspinbot/storage/output", audio_format: str = "wav",
                content_type: str = "", pipeline: str = "") -> io.NodeOutput:
        given = [label for label, value in (("video", video), ("audio", audio), ("images", images),
                                            ("file_path", (file_path or "").strip() or None)) if value is not None]
        if len(given) != 1:
            raise InvalidInputError(f"connect exactly one of video, audio, images or file_path (got {', '.join(given) or 'none'})")
        output_dir = folder_paths.get_output_directory()
        files = _write_local(given[0], video, audio, images, file_path, output_dir, filename_prefix or "myspinbot/storage/output",
                             audio_format or "wav")

        settings = load_settings(settings_file=comfy_settings_path(folder_paths.get_user_directory()))
        job_id = _job_id()
        prompt_hash = prompt_sha256(cls.hidden.prompt if cls.hidden is not None else None)
        outcomes: list[StorageOutcome] = []
        for index, (path, _) in enumerate(files):
            item_name = name if len(files) == 1 else f"{name}_{index + 1:05d}"
            size = max(1, os.path.getsize(path))
            outcomes.append(store_output(
                path, name=item_name, bucket=bucket, key_template=key_template, settings=settings, job_id=job_id,
                pipeline=pipeline or None, prompt_hash=prompt_hash, content_type=content_type.strip() or None,
                create_bucket=create_bucket, presign_expiry_s=presign_expiry_s, mandatory=mandatory,
                on_progress=progress_callback(size),
            ))

        entries = [entry for _, entry in files if entry is not None]
        ui: dict = {}
        if entries:
            if given[0] == "audio":
                ui["audio"] = entries
            elif given[0] == "file_path" and extension_of(files[0][0]) not in ("png", "jpg", "jpeg", "webp", "gif", "mp4", "webm"):
                ui["files"] = entries
            else:
                ui["images"] = entries
                if given[0] == "video" or extension_of(files[0][0]) in ("mp4", "webm"):
                    ui["animated"] = [True]
        ui[UI_KEY] = [o.ui_block() for o in outcomes]
        uris = "\n".join(o.uri or o.local_path for o in outcomes)
        urls = "\n".join(o.presigned_url or "" for o in outcomes)
        return io.NodeOutput(uris, urls, ui=ui)


def _job_id() -> str | None:
    """The running prompt's id: the job service queues each job with its job id as prompt id."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return None
    context = get_executing_context()
    return getattr(context, "prompt_id", None) if context is not None else None


def _write_local(kind: str, video, audio, images, file_path: str, output_dir: str, prefix: str,
                 audio_format: str) -> list[tuple[Path, dict | None]]:
    """Write the input into the output folder; returns (path, UI file entry) per file."""
    if kind == "images":
        written = []
        for i in range(images.shape[0]):
            written.append(_claim(output_dir, prefix, "png", lambda p, i=i: write_png(image_to_uint8(images, i), p)))
        return written
    if kind == "audio":
        samples, sample_rate = audio_to_numpy(audio)
        return [_claim(output_dir, prefix, audio_format, lambda p: write_audio(samples, sample_rate, p, audio_format))]
    if kind == "video":
        source = video.get_stream_source()
        trim = video.get_active_trim_window() if hasattr(video, "get_active_trim_window") else (0.0, 0.0)
        if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and not any(trim):
            return [_claim(output_dir, prefix, extension_of(source, "mp4"), lambda p: copy_file(source, p))]
        return [_claim(output_dir, prefix, "mp4", lambda p: video.save_to(str(p), format="mp4"))]
    roots = [output_dir, folder_paths.get_input_directory(), folder_paths.get_temp_directory()]
    source = resolve_within(file_path.strip(), roots, base=output_dir)
    if source.is_relative_to(Path(output_dir).resolve()):
        rel = source.relative_to(Path(output_dir).resolve())
        subfolder = rel.parent.as_posix() if rel.parent != Path(".") else ""
        return [(source, {"filename": source.name, "subfolder": subfolder, "type": "output"})]
    return [_claim(output_dir, prefix, extension_of(source), lambda p: copy_file(source, p))]


def _claim(output_dir: str, prefix: str, ext: str, write) -> tuple[Path, dict]:
    path, subfolder, filename = allocate_output_path(output_dir, prefix, ext)
    try:
        write(path)
    except BaseException:
        if path.exists() and path.stat().st_size == 0:
            path.unlink()  # our own empty placeholder, never an output
        raise
    return path, {"filename": filename, "subfolder": subfolder, "type": "output"}
