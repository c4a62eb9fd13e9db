"""The model manager's shapes: ``GET /models``, ``GET /models/{name}``,
``POST /models/{name}/download`` and ``GET /capabilities`` (built by ``models.manager``)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import ConfigDict, Field

from ...models.manager import DONE, FAILED, QUEUED, RUNNING
from .base import ContractModel, ErrorResponse, number

Size = Annotated[int, Field(ge=0)]
ModelState = Annotated[Literal["present", "modified", "partial", "missing"], Field(
    description="present: every file, all matching the manifest; modified: every file, some differ (used as is, "
                "e.g. a fine-tune); partial: some files; missing: none.")]


class ModelManifestFile(ContractModel):
    """A file of a model as the manifest lists it."""

    repo_path: str
    filename: str
    size_bytes: Optional[Size]
    sha256: Optional[str] = Field(description="null: checked by size only.")


class ModelFileStatus(ContractModel):
    filename: str
    repo_path: str
    path: Optional[str] = Field(description="Where the file was found; null when absent.")
    expected_path: Optional[str]
    present: bool
    size_bytes: Optional[Size]
    expected_size_bytes: Optional[Size]
    size_ok: Optional[bool]
    sha256: Literal["match", "mismatch", "unchecked"]
    matches_manifest: Optional[bool]


class ModelWarning(ContractModel):
    code: Literal["model_modified"]
    model: str
    file: str
    path: Optional[str]
    reason: Literal["size", "sha256"]
    message: str


class ModelStatus(ContractModel):
    name: str
    state: ModelState
    present: bool
    directory: Optional[str]
    size_bytes: Size
    expected_size_bytes: Optional[Size]
    files: list[ModelFileStatus]
    missing: list[str] = Field(description="File names not found.")
    extras: list[str] = Field(description="Files in the model's folder the manifest does not list.")
    warnings: list[ModelWarning]


class DownloadProgress(ContractModel):
    """A background download's progress (kept in memory until ComfyUI restarts)."""

    status: Literal[QUEUED, RUNNING, DONE, FAILED]
    done_bytes: Size
    total_bytes: Optional[Size]
    fraction: Optional[number(0, 1)]
    started_at: number(0) = Field(description="Unix seconds.")
    finished_at: Optional[number(0)]
    error: Optional[ErrorResponse]


class ModelUrls(ContractModel):
    self: str
    download: str


class ModelInfo(ContractModel):
    name: str
    repo_id: str
    revision: Optional[str]
    folder: str
    subdir: str
    files: list[ModelManifestFile]
    size_bytes: Optional[Size]
    licence: str
    licence_url: str
    non_commercial: bool
    licence_notice: str
    used_by: list[str] = Field(description="Nodes and pipelines that use the model.")
    description: str
    fetch_command: str
    status: ModelStatus
    download: Optional[DownloadProgress]
    urls: ModelUrls


class ModelFolder(ContractModel):
    directories: list[str]
    hand_placed: list[str] = Field(description="Files no manifest entry accounts for (custom fine-tunes, ...).")


class ModelList(ContractModel):
    models: list[ModelInfo]
    folders: dict[str, ModelFolder]
    models_root: Optional[str]
    offline: bool = Field(description="HF_HUB_OFFLINE is set: downloads are refused.")


class ModelDownloadUrls(ContractModel):
    progress: str


class ModelDownload(ContractModel):
    """The answer to a download request: present (nothing to do) or downloading."""

    model: str
    licence: str
    non_commercial: bool
    licence_notice: str
    urls: ModelDownloadUrls
    status: Literal["present", "downloading"]
    download: Optional[DownloadProgress]


class ModelSummary(ContractModel):
    present: bool
    state: ModelState
    size_bytes: Size
    expected_size_bytes: Optional[Size]
    missing: list[str]
    licence: str
    licence_url: str
    non_commercial: bool
    licence_notice: str
    used_by: list[str]
    fetch_command: str


class PipelineReadiness(ContractModel):
    ready: bool
    models: list[str]
    missing: list[str]
    errors: list[ErrorResponse] = Field(description="One models_missing item when a model is missing.")
    warnings: list[ModelWarning]


class EngineReport(ContractModel):
    """Whether an engine can run here; probes add what they know (backend, error)."""

    model_config = ConfigDict(extra="allow")
    available: bool


class CudaReport(ContractModel):
    model_config = ConfigDict(extra="allow")
    available: bool
    devices: list[dict]


class MemoryReport(ContractModel):
    total_bytes: Optional[Size]
    available_bytes: Optional[Size]
    source: Optional[str]


class DeviceReport(ContractModel):
    device: Literal["cpu", "cuda", "mps"]
    torch: Optional[str] = Field(description="torch's version; null without torch.")
    cuda: CudaReport
    memory: MemoryReport


class LipSyncScoreReport(ContractModel):
    """Whether every job's video output gets a lip-sync score (its 'quality' block): on while the
    SyncNet model file is in ComfyUI's models/syncnet, checked at each submission."""

    enabled: bool
    model: str = Field(description="The manifest model the score uses (syncnet_v2).")
    file: Optional[str] = Field(description="Its file in models/syncnet; null when disabled.")
    reason: Optional[str] = Field(description="Why scores are off and how to turn them on; null when enabled.")
    missing_files: list[str] = Field(description="Where the missing file(s) belong.")
    fetch_command: Optional[str] = Field(description="The command that downloads the model.")


class ServerReport(ContractModel):
    """One server of a shared job queue (MYSPINBOT_DATABASE_URL), as its last heartbeat left it."""

    id: str = Field(description="MYSPINBOT_SERVER_ID (default: host name and process id).")
    host: str
    models: list[str] = Field(description="The manifest models it has on disk; it only claims jobs needing no others.")
    pipelines: list[str] = Field(description="The pipelines it claims jobs of.")
    state: Literal["busy", "idle"] = Field(description="busy: its ComfyUI runs a prompt or it holds a job.")
    running: list[str] = Field(description="Ids of the jobs it holds.")
    started_at: float = Field(description="When its process started, Unix seconds.")
    last_heartbeat: float = Field(description="Its last heartbeat, Unix seconds (the database's clock).")
    live: bool = Field(description="Its last heartbeat is younger than the lease (MYSPINBOT_LEASE_S).")


class Capabilities(ContractModel):
    nodes: list[str]
    engines: dict[str, EngineReport]
    models: dict[str, ModelSummary]
    pipelines: dict[str, PipelineReadiness]
    lipsync_score: LipSyncScoreReport
    device: DeviceReport
    offline: bool
    servers: Optional[list[ServerReport]] = Field(None, description="The servers sharing this job queue "
                                                  "(MYSPINBOT_DATABASE_URL), by id; null on a single server.")
