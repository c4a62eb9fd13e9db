"""The endpoints of the model manager and the capabilities report."""

from __future__ import annotations

from .base import PREFIX
from .models import Capabilities, ModelDownload, ModelInfo, ModelList
from .spec import PLAIN_NAME, Endpoint, Response, error, path_param

MODEL_NAME = path_param("name", {"type": "string", "pattern": PLAIN_NAME, "maxLength": 128},
                        "A model's manifest name (GET /models lists them).")
UNKNOWN_MODEL = error("no model of that name in the manifest.", "unknown_model")

LIST_MODELS = Endpoint(
    "GET", f"{PREFIX}/models", "listModels", tag="model",
    summary="Every manifest model: licence (non-commercial flag), sizes, files present or missing, sha256 match, "
            "hand-placed files, download progress.",
    responses={200: Response("The models.", ModelList)})

GET_MODEL = Endpoint(
    "GET", f"{PREFIX}/models/{{name}}", "getModel", tag="model",
    summary="One model (the progress URL a download returns).",
    parameters=(MODEL_NAME,),
    responses={200: Response("The model.", ModelInfo), 404: UNKNOWN_MODEL})

DOWNLOAD_MODEL = Endpoint(
    "POST", f"{PREFIX}/models/{{name}}/download", "downloadModel", tag="model",
    summary="Start downloading a model in the background (its licence comes with the answer); poll the progress "
            "URL.",
    parameters=(MODEL_NAME,),
    responses={202: Response("Downloading.", ModelDownload,
                             headers={"Location": {"$ref": "#/components/headers/Location"}}),
               200: Response("Every file is already there and matches the manifest.", ModelDownload),
               404: UNKNOWN_MODEL,
               409: error("a download of it runs already, or a file that differs from the manifest is in the way.",
                          "download_in_progress", "model_conflict"),
               503: error("downloads are off (HF_HUB_OFFLINE) and files are missing.", "offline")})

GET_CAPABILITIES = Endpoint(
    "GET", f"{PREFIX}/capabilities", "getCapabilities", tag="model",
    summary="What this server can run: the pack's nodes, engines, models, each pipeline's readiness (missing "
            "models) and the device.",
    responses={200: Response("The report.", Capabilities)})

ENDPOINTS = (LIST_MODELS, GET_MODEL, DOWNLOAD_MODEL, GET_CAPABILITIES)
