"""The contract (``server/contract/``) against the code that reads and writes the same shapes:
the request parsers accept what the documented schemas accept, the views build bodies the
models accept, and the serialisation keeps the JSON as it was (tier 1, no server)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from multidict import MultiDict

from myspinbot.server.api_errors import ApiError
from myspinbot.server.contract.base import ContractModel
from myspinbot.server.contract.endpoints import ENDPOINTS
from myspinbot.server.contract.jobs import MAX_PAGE, ListJobsQuery
from myspinbot.server.model import FAILED, QUEUED, RUNNING, STATUSES, SUCCEEDED, Asset, Job, Output
from myspinbot.server.openapi import build_openapi
from myspinbot.server.pipelines import builtin_pipelines
from myspinbot.server.views import asset_json, job_json, output_event_json, progress_event_json, webhook_event_json
from myspinbot.server.webhook_request import parse_webhook

SPEC = build_openapi(ENDPOINTS, builtin_pipelines())


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def test_every_component_schema_is_valid_json_schema():
    for name, schema in SPEC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert all("title" not in p for p in schema.get("properties", {}).values()), name


def all_models():
    seen, todo = set(), [ContractModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def test_every_contract_model_is_in_the_document():
    """No model of the contract is left out of the components (a shape nobody documents)."""
    from myspinbot.server.contract import base, jobs, models, service, webhooks  # noqa: F401 (all loaded)

    schemas = SPEC["components"]["schemas"]
    missing = sorted(m.__name__ for m in all_models() if m.__module__.startswith("myspinbot.server.contract")
                     and m.__name__ not in schemas and m is not ListJobsQuery)  # the query is the listJobs parameters
    assert missing == []


@pytest.mark.parametrize("body", [
    {"url": "https://hooks.example.com/x"},
    {"url": "http://hooks.example.com/x", "events": ["job.completed"]},
    {"url": "https://hooks.example.com/x", "events": ["job.status", "job.completed"]},
    {"url": "ftp://hooks.example.com/x"},
    {"url": "https://hooks.example.com/x", "events": []},
    {"url": "https://hooks.example.com/x", "events": ["job.deleted"]},
    {"url": "https://hooks.example.com/x", "secret": "s"},
    {"events": ["job.status"]},
    {"url": "https://hooks.example.com/" + "a" * 2048},
    {"url": 7},
    ["https://hooks.example.com/x"],
])
def test_the_webhook_request_schema_and_its_parser_agree(body):
    documented = schema_validator("WebhookRequest").is_valid(body)
    try:
        parse_webhook(body)
        accepted = True
    except ApiError as err:
        assert err.status == 422
        accepted = False
    assert documented is accepted, body


def query(**values) -> MultiDict:
    return MultiDict([(k, v) for k, vs in values.items() for v in (vs if isinstance(vs, list) else [vs])])


def test_the_list_query_reads_filters_and_refuses_with_the_apis_codes():
    q = ListJobsQuery.from_query(query(status=["queued,running", " failed,", ""], pipeline="lite,f5,lite", limit="5"))
    assert q.status == ("queued", "running", "failed") and q.pipeline == ("lite", "f5") and q.limit == 5
    assert q.cursor is None and ListJobsQuery.from_query(query()).limit == 20
    cases = {"limit=x": (query(limit="x"), "limit must be an integer", "limit"),
             "limit=0": (query(limit="0"), f"limit must be between 1 and {MAX_PAGE}", "limit"),
             f"limit={MAX_PAGE + 1}": (query(limit=str(MAX_PAGE + 1)), f"limit must be between 1 and {MAX_PAGE}", "limit"),
             "status=done": (query(status="done"), "unknown status 'done'", "status"),
             "sort=x": (query(sort="x"), "unknown query parameter 'sort'", "sort")}
    for label, (raw, message, field) in cases.items():
        with pytest.raises(ApiError) as info:
            ListJobsQuery.from_query(raw)
        assert info.value.status == 422 and info.value.message == message, label
        assert info.value.details["field"] == field, label


def job(status: str, **fields) -> Job:
    return Job(id="6f1c2a3b-0000-4000-8000-000000000001", pipeline="lite", status=status, created_at=1_800_000_000.5,
               **fields)


def test_job_bodies_keep_their_fields_values_and_order():
    output = Output("video", "video", "video/mp4", 12, "myspinbot/x/out.mp4")
    stored = Output("audio", "audio", "audio/wav", 3, "myspinbot/x/a.wav",
                    storage={"kind": "s3", "uri": "s3://b/k", "presigned_url": None, "status": "pending", "warning": "w",
                             "key": "never shown"})
    running = job(RUNNING, started_at=1_800_000_001.0, progress=0.25, stage="animate", message="animating",
                  progress_detail={"stage_index": 1, "stages": 4, "step": 3, "steps": 10, "eta_seconds": 12.5})
    body = job_json(running, "/api/myspinbot", 4)
    assert list(body) == ["id", "pipeline", "status", "created_at", "started_at", "completed_at", "queue_position",
                          "progress", "outputs", "error", "urls"]
    assert body["created_at"] == "2027-01-15T08:00:00.500Z" and body["queue_position"] is None
    assert body["progress"] == {"value": 0.25, "stage": "animate", "message": "animating", "stage_index": 1,
                                "stages": 4, "step": 3, "steps": 10, "eta_seconds": 12.5}
    assert json.dumps(body["progress"]["step"]) == "3"  # an int stays an int
    assert body["urls"]["cancel"] == "/api/myspinbot/jobs/6f1c2a3b-0000-4000-8000-000000000001/cancel"
    done = job(SUCCEEDED, outputs=[output, stored], progress=1.0, progress_detail={"stages": 4, "stage_index": 2})
    body = job_json(done, "/myspinbot", webhook=None)
    assert "storage" not in body["outputs"][0] and body["webhook"] is None
    assert body["outputs"][1]["storage"] == {"kind": "s3", "uri": "s3://b/k", "presigned_url": None,
                                             "status": "pending", "warning": "w"}
    assert body["progress"]["stage_index"] == 3 and body["progress"]["eta_seconds"] == 0.0
    assert job_json(job(QUEUED), "/myspinbot", 2)["queue_position"] == 2
    for status in STATUSES:
        assert schema_validator("Job").is_valid(job_json(job(status), "/myspinbot")), status
    failed = job(FAILED, error={"code": "no_face_detected", "message": "no face", "details": {}})
    assert schema_validator("Job").is_valid(job_json(failed, "/myspinbot"))
    event = output_event_json(done, stored, "/myspinbot")
    assert list(event)[:2] == ["id", "name"] and schema_validator("OutputEvent").is_valid(event)
    assert schema_validator("ProgressEvent").is_valid(progress_event_json(running))
    hook = webhook_event_json("job.completed", 1_800_000_002.0, done, "/myspinbot")
    assert "webhook" not in hook["data"] and schema_validator("WebhookEvent").is_valid(hook)
    asset = Asset("a" * 64, "image", "image/png", 10, "myspinbot/assets/a.png", 1.0)
    assert asset_json(asset) == {"asset_id": "a" * 64, "content_type": "image/png", "size_bytes": 10,
                                 "sha256": "a" * 64, "kind": "image"}


def test_a_body_the_contract_lacks_a_field_for_is_refused():
    """Drift between the records and the contract fails loudly (a 500 in a handler, caught by the tests)."""
    with pytest.raises(Exception):
        job_json(job(FAILED, error={"code": "x", "message": "y", "details": {}, "trace": "secret"}), "/myspinbot")
    with pytest.raises(Exception):
        job_json(job("paused"), "/myspinbot")


def test_error_bodies_keep_a_lone_surrogate_escaped():
    err = ApiError(422, "invalid_parameter", "bad \ud800", {"field": "\ud800"})
    assert err.envelope() == {"error": {"code": "invalid_parameter", "message": "bad \ud800", "details": {"field": "\ud800"}}}
    assert b"\\ud800" in err.response().body
