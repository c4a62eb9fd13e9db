"""200 concurrent submissions (tier 1, fake host, the aiohttp test client).

- With room for 200: 200 distinct ``Idempotency-Key`` s create 200 jobs; replaying all 200 at
  once creates none (each replay is 200 with ``Idempotency-Replayed: true`` and its own job).
- With a queue depth of 50: exactly 50 are accepted, the other 150 get 429 ``queue_full`` with
  ``Retry-After``, and nothing of a refused submission is left behind: no job row, no prompt in
  ComfyUI's queue, no staged upload folder, no idempotency record (its key still works later).

Most submissions are JSON with uploaded asset ids (so uploads do not dominate the run); every
tenth is multipart with the real portrait and recording, to check the staging folders.
"""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.api_errors import ApiError
from myspinbot.server.model import STATUSES

N = 200
MULTIPART_EVERY = 10  # submissions 0, 10, 20, ... are multipart


def job_count(service) -> int:
    return service.store.count_status(*STATUSES)


def staged(host) -> set[str]:
    """The per-job staging folders under ``<input>/myspinbot/`` (the asset store aside)."""
    root = host.input_dir / "myspinbot"
    return {p.name for p in root.iterdir() if p.name != "assets"} if root.exists() else set()


class Submissions:
    """The 200 submissions: submission ``i`` always sends the same body under the key ``load-<i>``."""

    def __init__(self, client, fixtures_dir, portrait: str, audio: str):
        self.client = client
        self.portrait_bytes = (fixtures_dir / "portrait_astronaut.png").read_bytes()
        self.audio_bytes = (fixtures_dir / "speech_front_left.wav").read_bytes()
        self.portrait, self.audio = portrait, audio

    @staticmethod
    def multipart(i: int) -> bool:
        return i % MULTIPART_EVERY == 0

    def post(self, i: int, key: str | None = None):
        headers = {"Idempotency-Key": key or f"load-{i}"}
        if self.multipart(i):
            form = aiohttp.FormData()
            form.add_field("pipeline", "lite")
            form.add_field("seed", str(i))
            form.add_field("portrait", io.BytesIO(self.portrait_bytes), filename="me.png")
            form.add_field("audio", io.BytesIO(self.audio_bytes), filename="speech.wav")
            return self.client.post("/myspinbot/jobs", data=form, headers=headers)
        return self.client.post("/myspinbot/jobs", json=lite_body(self.portrait, self.audio, seed=i), headers=headers)

    async def all(self, indices) -> list[tuple[int, int, dict, dict]]:
        """POST every submission in ``indices`` at once; (index, status, headers, body) each."""
        async def one(i: int):
            async with self.post(i) as r:
                return i, r.status, dict(r.headers), await r.json()

        return await asyncio.gather(*(one(i) for i in indices))


async def test_200_distinct_keys_make_200_jobs_and_replaying_them_makes_none(client, host, service, fixtures_dir):
    service.max_queued = N  # exactly room for all of them: the replays then meet a full queue
    host.enqueue_delay = 0.002  # the submissions interleave at the await, as on ComfyUI's queue
    subs = Submissions(client, fixtures_dir, *(await upload_inputs(client, fixtures_dir)))

    started = time.perf_counter()
    first = await subs.all(range(N))
    first_s = time.perf_counter() - started
    assert [status for _, status, _, _ in first] == [202] * N, [b for _, s, _, b in first if s != 202][:3]
    assert all("Idempotency-Replayed" not in headers for _, _, headers, _ in first)
    ids = {i: body["id"] for i, _, _, body in first}
    assert len(set(ids.values())) == N
    assert job_count(service) == N and len(host.prompts) == N and set(host.prompts) == set(ids.values())
    multipart_ids = {ids[i] for i in range(N) if subs.multipart(i)}
    assert staged(host) == multipart_ids

    started = time.perf_counter()
    replays = await subs.all(range(N))
    replay_s = time.perf_counter() - started
    assert [status for _, status, _, _ in replays] == [200] * N, [b for _, s, _, b in replays if s != 200][:3]
    for i, _, headers, body in replays:
        assert headers["Idempotency-Replayed"] == "true" and body["id"] == ids[i]
        assert headers["Location"] == body["urls"]["self"]
    assert job_count(service) == N and len(host.prompts) == N
    assert staged(host) == multipart_ids  # a replayed upload is not staged again
    assert service.idempotency.held_locks() == 0  # every per-key lock was released
    print(f"\n{N} submissions in {first_s:.2f} s, {N} replays in {replay_s:.2f} s")


async def test_with_a_queue_depth_of_50_the_excess_gets_429_and_nothing_is_half_created(client, host, service,
                                                                                         fixtures_dir):
    service.max_queued = 50
    host.enqueue_delay = 0.002
    subs = Submissions(client, fixtures_dir, *(await upload_inputs(client, fixtures_dir)))
    # Submissions refused by the second capacity check (in ``submit``, after the body was read
    # and its files staged), with whether their staging folder existed at that moment.
    late_refusals: list[tuple[str, bool]] = []
    real_submit = service.submit

    async def submit(job_id, pipeline, values):
        try:
            return await real_submit(job_id, pipeline, values)
        except ApiError as err:
            if err.code == "queue_full":
                late_refusals.append((job_id, service.staging_dir(job_id).is_dir()))
            raise

    service.submit = submit

    started = time.perf_counter()
    results = await subs.all(range(N))
    elapsed = time.perf_counter() - started
    accepted = {i: body for i, status, _, body in results if status == 202}
    refused = [(i, status, headers, body) for i, status, headers, body in results if status != 202]
    assert len(accepted) == 50 and len(refused) == 150, sorted({s for _, s, _, _ in results})
    for i, status, headers, body in refused:
        assert status == 429, body
        assert int(headers["Retry-After"]) == service.retry_after_s > 0
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
        error = body["error"]
        assert error["code"] == "queue_full" and error["message"]
        assert error["details"]["max_queued"] == 50 and error["details"]["retry_after_s"] == service.retry_after_s

    accepted_ids = {body["id"] for body in accepted.values()}
    assert len(accepted_ids) == 50
    # Nothing of the 150 refused submissions exists anywhere.
    assert job_count(service) == 50 and {j.id for j in service.store.page(limit=1000)} == accepted_ids
    assert service.store.count_status("queued") == 50
    assert len(host.prompts) == 50 and set(host.prompts) == accepted_ids and set(host.pending) == accepted_ids
    assert staged(host) == {body["id"] for i, body in accepted.items() if subs.multipart(i)}
    refused_multipart = [i for i, _, _, _ in refused if subs.multipart(i)]
    assert refused_multipart, "no multipart submission was refused: the staging cleanup went unchecked"
    staged_then_refused = [job_id for job_id, was_staged in late_refusals if was_staged]
    assert staged_then_refused, "no refusal came after staging: the cleanup went unchecked"
    assert not any(service.staging_dir(job_id).exists() for job_id, _ in late_refusals)
    for i, _, _, _ in refused:
        assert service.store.idempotency(f"load-{i}") is None
    for i in accepted:
        assert service.store.idempotency(f"load-{i}").job_id == accepted[i]["id"]
    assert service.idempotency.held_locks() == 0

    # A refused key did not get used up: once a place frees, the same submission is accepted.
    first = next(iter(accepted_ids))
    host.emit("execution_start", prompt_id=first)
    i = refused_multipart[0]
    async with subs.post(i) as r:
        assert r.status == 202, await r.text()
        retried = (await r.json())["id"]
    assert retried not in accepted_ids and job_count(service) == 51 and len(host.prompts) == 51
    assert staged(host) == {body["id"] for j, body in accepted.items() if subs.multipart(j)} | {retried}
    print(f"\n{N} submissions against a queue of 50 in {elapsed:.2f} s ({len(refused_multipart)} of the refused "
          f"were multipart; {len(late_refusals)} refused after reading the body, {len(staged_then_refused)} "
          f"with staged files)")
