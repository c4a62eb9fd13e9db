"""Issue #9 item 7: malformed input is a 4xx envelope, never a 500 (tier 1).

The cases of the issue (a number too large to be finite, "NaN", a lone surrogate, 100,000 nested
brackets, a cursor decoding to deeply nested JSON, a client leaving mid-upload), then a small
seeded fuzz of JSON bodies, form fields and cursors that must find no 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random

import aiohttp
import pytest
from aiohttp import web

from fake_host import Clock, FakeHost, compose_app, lite_body, upload_inputs
from myspinbot.server.settings import Settings


class Served:
    """The app on 127.0.0.1 as ComfyUI serves it: a plain ``AppRunner`` (no handler cancellation
    when a client leaves, unlike aiohttp's test server)."""

    def __init__(self, runner: web.AppRunner, port: int):
        self.runner, self.host, self.port = runner, "127.0.0.1", port


@pytest.fixture
async def served(tmp_path):
    """(server, host, statuses): the job API, with every answer's status recorded by a middleware."""
    host = FakeHost(tmp_path)
    composed = compose_app(host, Settings(max_queued=100_000), clock=Clock())
    statuses: list[int] = []

    @web.middleware
    async def record(request, handler):
        response = await handler(request)
        statuses.append(response.status)
        return response

    app = composed.app
    app.middlewares.insert(0, record)  # outermost: sees every answer, the guard's too
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Served(runner, runner.addresses[0][1]), host, statuses
    await runner.cleanup()


@pytest.fixture
async def api(served):
    server, _, _ = served
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session


async def error_of(response, status: int | None = None) -> dict:
    """The envelope of a 4xx answer (any 4xx unless ``status``)."""
    text = await response.text()
    assert 400 <= response.status < 500 if status is None else response.status == status, (response.status, text)
    error = json.loads(text)["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] and error["message"]
    return error


async def post_raw(api, body: bytes | str, content_type: str = "application/json"):
    return await api.post("/myspinbot/jobs", data=body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
                          headers={"Content-Type": content_type})


@pytest.fixture
async def inputs(api, fixtures_dir):
    return await upload_inputs(api, fixtures_dir)


# --- the cases of the issue ------------------------------------------------------------------

async def test_a_number_too_large_to_be_finite_is_422(api, inputs):
    body = json.dumps(lite_body(*inputs)).replace('"inputs": {', '"inputs": {"fps": 1e309, ')
    error = await error_of(await post_raw(api, body), 422)
    assert error["code"] == "invalid_parameter" and error["details"]["field"] == "inputs.fps"
    body = json.dumps(lite_body(*inputs)).replace('"inputs": {', '"inputs": {"seed": ' + "9" * 400 + ", ")
    await error_of(await post_raw(api, body))  # an integer far out of range: 4xx too


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "1e309"])
async def test_non_finite_numbers_are_refused_as_json_strings_and_form_fields(api, inputs, value):
    error = await error_of(await api.post("/myspinbot/jobs", json=lite_body(*inputs, fps=value)), 422)
    assert error["code"] == "invalid_parameter" and error["details"]["field"] == "fps"
    form = aiohttp.FormData({"pipeline": "lite", "portrait": inputs[0], "audio": inputs[1], "fps": value},
                            default_to_multipart=True)
    error = await error_of(await api.post("/myspinbot/jobs", data=form), 422)
    assert error["code"] == "invalid_parameter" and error["details"]["field"] == "fps"


async def test_json_nan_literals_stay_malformed(api, inputs):
    body = json.dumps(lite_body(*inputs)).replace('"inputs": {', '"inputs": {"fps": NaN, ')
    assert (await error_of(await post_raw(api, body), 400))["code"] == "malformed_body"


async def test_a_lone_surrogate_in_a_script_is_400(api, inputs):
    body = '{"pipeline": "lite", "inputs": {"portrait": {"asset_id": "%s"}, "script": "hi \\ud800 there"}}' % inputs[0]
    error = await error_of(await post_raw(api, body), 400)
    assert error["code"] == "malformed_body" and error["details"]["field"] == "inputs.script"
    body = '{"pipeline": "lite", "inputs": {"\\udfff": 1}}'
    assert (await error_of(await post_raw(api, body), 400))["code"] == "malformed_body"


@pytest.mark.parametrize("body", [
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    '{"pipeline": "lite", "inputs": {"script": ' + "[" * 50_000 + "]" * 50_000 + "}}",
    '{"a":' * 40_000 + "1" + "}" * 40_000,
], ids=["open", "balanced", "in-inputs", "objects"])
async def test_100000_nested_brackets_are_400(api, body):
    error = await error_of(await post_raw(api, body), 400)
    assert error["code"] == "body_too_deep" and error["details"]["limit"] == "MYSPINBOT_MAX_JSON_DEPTH"


async def test_brackets_inside_strings_do_not_count_as_depth(api, inputs):
    r = await api.post("/myspinbot/jobs", json=lite_body(inputs[0], script='[[[[ "\\" {{{{' * 200))
    assert r.status == 202, await r.text()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("raw", [
    b"[" * 5000, b"[" * 140, b"[" * 140 + b"]" * 10, b"[NaN, \"x\"]", b"[1e309, \"x\"]", b"[Infinity, \"x\"]",
    b"[1, \"\\ud800\"]", b"[1, \"x\", 3]", b"{\"a\": 1}", b"[" + b"9" * 400 + b", \"x\"]", b"\xff\xfe",
    b"[1.5, \"'; DROP TABLE jobs; --\"]",
])
async def test_malformed_cursors_are_422(api, raw):
    error = await error_of(await api.get("/myspinbot/jobs", params={"cursor": b64(raw)}), 422)
    assert error["code"] == "invalid_cursor"


async def test_a_client_leaving_mid_upload_is_not_a_server_error(served, caplog):
    server, host, statuses = served
    for content_type, start in (("multipart/form-data; boundary=b",
                                 b'--b\r\nContent-Disposition: form-data; name="portrait"; filename="a.png"\r\n\r\n' + b"\0" * 5000),
                                ("application/json", b'{"pipeline": "lite", "inputs": {"script": "' + b"a" * 5000)):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"POST /myspinbot/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type.encode()
                     + b"\r\nContent-Length: 500000\r\n\r\n" + start)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await writer.wait_closed()
    for _ in range(100):
        if len(statuses) == 2:
            break
        await asyncio.sleep(0.05)
    assert statuses == [400, 400]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    staged = host.input_dir / "myspinbot"
    assert not staged.exists() or not any(staged.rglob("upload_*"))


async def test_odd_part_names_are_4xx(api):
    for name in ("\udcff", "a b", "é", "", "x" * 65):
        body = (f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\nv\r\n--b--\r\n').encode("utf-8", "surrogateescape")
        r = await api.post("/myspinbot/jobs", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
        await error_of(r)


# --- a small fuzz: no 5xx ----------------------------------------------------------------------

def mutations(seed: int, base: str, count: int) -> list[bytes]:
    """``count`` random byte-level edits of ``base``: cuts, repeats, swaps and odd insertions."""
    rng = random.Random(seed)
    odd = [b"\\ud800", b"\\udfff\\ud800", b"1e309", b"-1e400", b"NaN", b"[", b"{", b"]", b"}", b'"', b"\\", b"\xff",
           b"\x00", b"9" * 500, b'{"a":' * 50, b"[" * 60, b"null", b"true", b"\\u0000", b"1" * 5000]
    data = base.encode()
    out = []
    for _ in range(count):
        edited = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(edited) + 1)
            kind = rng.random()
            if kind < 0.4:
                edited[at:at] = rng.choice(odd)
            elif kind < 0.6:
                del edited[at:at + rng.randint(1, 20)]
            elif kind < 0.8:
                edited[at:at] = edited[at:at + rng.randint(1, 30)] * rng.randint(2, 50)
            else:
                edited[at:at + 1] = bytes([rng.randrange(256)])
        out.append(bytes(edited))
    return out


async def test_fuzzed_json_bodies_get_no_5xx(api, inputs, served):
    _, _, statuses = served
    portrait, audio = inputs
    base = json.dumps({"pipeline": "lite", "inputs": {"portrait": {"asset_id": portrait}, "audio": {"asset_id": audio}},
                       "options": {"fps": 25, "seed": 3}})
    cases = mutations(1, base, 300) + [s.encode("utf-8", "surrogatepass") for s in (
        '{"pipeline": "lite", "inputs": {"fps": 1e309}}', '{"pipeline": "lite", "inputs": {"fps": "NaN"}}',
        '{"pipeline": "lite", "inputs": {"script": "\\ud800"}}', "[" * 100_000, "", "null", "1e309", '"\\ud800"',
        '{"pipeline": "\\ud800"}', '{"pipeline": ["lite"]}', '{"pipeline": "lite", "inputs": {"portrait": {"asset_id": 1e309}}}',
        '{"pipeline": "lite", "webhook": {"url": "\\ud800", "events": [1e309]}}')]
    for body in cases:
        response = await post_raw(api, body)
        assert response.status < 500, (body[:200], await response.text())
        if response.status >= 400:
            await error_of(response)
    assert all(status < 500 for status in statuses)


async def test_fuzzed_cursors_and_queries_get_no_5xx(api):
    rng = random.Random(2)
    cursors = [b64(bytes(rng.randrange(256) for _ in range(rng.randint(0, 150)))) for _ in range(100)]
    cursors += [b64(m[:4000]) for m in mutations(3, json.dumps([1_800_000_000.5, "0e3a1a0c-1b7f-4c1e-9d6f-1c2b3a4d5e6f"]), 100)]
    cursors += ["", "=", "%", "\udcff", "a" * 6000, "!!!!", b64(b"[" * 150)]
    for cursor in cursors:
        response = await api.get("/myspinbot/jobs", params={"cursor": cursor} if cursor else {})
        assert response.status in (200, 422), (cursor[:100], await response.text())
    for query in ("pipeline=%ED%A0%80", "status=%FF", "limit=1e309", "limit=NaN", "limit=" + "9" * 5000,
                  "cursor=%ED%A0%80", "pipeline=" + "%5B" * 1000):
        response = await api.get("/myspinbot/jobs?" + query)
        assert response.status < 500, (query[:100], await response.text())


async def test_fuzzed_form_fields_get_no_5xx(api, inputs):
    rng = random.Random(4)
    values = [b"NaN", b"inf", b"1e309", b"-0", b"\x00", b"\xed\xa0\x80", b"\xff\xfe", b"9" * 5000, b"", b" ",
              b"[" * 1000, b"{}", b"true", b'{"url": "\\ud800", "events": [1e309]}']
    names = ["fps", "seed", "voice", "script", "webhook", "pipeline", "portrait", "audio"]
    for _ in range(120):
        fields = [("pipeline", rng.choice([b"lite", b"f5", b"infinitetalk", b"nope"])), ("portrait", inputs[0].encode())]
        fields += [(rng.choice(names), rng.choice(values)) for _ in range(rng.randint(1, 4))]
        body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (n.encode(), v)
                        for n, v in fields) + b"--b--\r\n"
        response = await api.post("/myspinbot/jobs", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert response.status < 500, (fields, await response.text())
