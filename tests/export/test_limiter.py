"""The limiter: FIFO order, 429 with Retry-After past the queue, slots freed on disconnect, 202 on timeout."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from host.testing import sample_value
from plugins.export.limiter import ExportLimiter, QueueFull
from tests.export.conftest import leftovers, poll_status
from tests.export.helpers import make_gate, release


async def test_fifo_order_and_slot_reuse():
    limiter = ExportLimiter(max_concurrent=2, max_queue=3)
    first, second = limiter.enter(), limiter.enter()
    assert (first.slot, second.slot) == (0, 1)
    waiting = [limiter.enter() for _ in range(3)]
    with pytest.raises(QueueFull) as full:
        limiter.enter()
    assert full.value.retry_after >= 1 and full.value.queue_depth == 3
    order: list[int] = []

    async def wait(index: int) -> None:
        await limiter.wait(waiting[index])
        order.append(index)

    tasks = [asyncio.create_task(wait(i)) for i in (2, 0, 1)]  # waiting order is arrival, not task order
    await asyncio.sleep(0)
    limiter.leave(first, duration=4.0)
    limiter.leave(second, duration=4.0)
    await asyncio.wait_for(asyncio.gather(tasks[1], tasks[2]), 5)
    assert order == [0, 1]
    assert (waiting[0].granted.result(), waiting[1].granted.result()) == (0, 1)
    assert limiter.queued == 1 and limiter.running == 2
    assert limiter.retry_after() == 4  # mean 4 s × (1 waiting + 1) / 2 slots
    limiter.leave(waiting[0])
    await asyncio.wait_for(tasks[0], 5)
    assert order == [0, 1, 2]


async def test_cancelled_waiter_leaves_the_queue():
    limiter = ExportLimiter(max_concurrent=1, max_queue=2)
    holder = limiter.enter()
    quitter, stayer = limiter.enter(), limiter.enter()
    quitting = asyncio.create_task(limiter.wait(quitter))
    await asyncio.sleep(0)
    quitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitting
    assert limiter.queued == 1
    limiter.leave(holder)
    assert await asyncio.wait_for(limiter.wait(stayer), 5) == 0
    limiter.leave(holder)  # leaving twice gives nothing back twice
    assert limiter.running == 1


def gated(gate: str, records: int = 10) -> dict:
    return {"format": "csv", "source": "gated", "params": {"gate": gate, "records": records}}


async def test_queue_full_is_429_with_retry_after_and_queued_exports_run_in_order(export_client, tmp_path):
    client = await export_client(max_concurrent=1, max_queue=2, queue_timeout_s=0.0)
    gates = [make_gate(tmp_path, f"g{i}") for i in range(3)]
    first = asyncio.create_task(client.post("/export/run", json=gated(gates[0])))  # runs, blocked on its gate
    await poll_status(client, lambda s: s["concurrentExports"] == 1)
    answers = []
    for gate in gates[1:]:  # these wait in the queue: answered 202 at once (queue_timeout_s = 0)
        response = await client.post("/export/run", json=gated(gate))
        answers.append((response.status, await response.json()))
    assert [status for status, _ in answers] == [202, 202]
    await poll_status(client, lambda s: s["concurrentExports"] == 1 and s["queueDepth"] == 2)
    rejected = await client.post("/export/run", json=gated(gates[0]))
    assert rejected.status == 429
    assert int(rejected.headers["Retry-After"]) >= 1
    body = await rejected.json()
    assert body["error"]["code"] == "export_queue_full" and body["success"] is False
    assert (await (await client.get("/export/status")).json())["status"] == "saturated"
    assert sample_value(client.app, "export_fail_total", {"reason": "queue_full", "format": "csv"}) == 1

    listed = (await (await client.get("/export/jobs?status=running")).json())["jobs"]
    ids = [listed[0]["id"]] + [body["job"]["id"] for _, body in answers]

    async def statuses() -> list[str]:
        return [(await (await client.get(f"/export/jobs/{job_id}")).json())["status"] for job_id in ids]

    assert await statuses() == ["running", "queued", "queued"]
    for index, gate in enumerate(gates):
        await asyncio.to_thread(release, gate)
        if index < 2:
            await poll_status(client, lambda s, left=1 - index: s["queueDepth"] == left)
            expected = ["succeeded"] * (index + 1) + ["running"] + ["queued"] * (1 - index)
            assert await statuses() == expected
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    assert await statuses() == ["succeeded"] * 3
    assert (await first).status == 200


async def test_waiting_past_queue_timeout_is_202_and_the_work_goes_on(export_client, tmp_path):
    client = await export_client(max_concurrent=1, queue_timeout_s=0.2)
    gate = make_gate(tmp_path, "first")
    blocker = asyncio.create_task(client.post("/export/run", json=gated(gate)))
    await poll_status(client, lambda s: s["concurrentExports"] == 1)
    response = await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}, {"a": 2}]})
    assert response.status == 202
    body = await response.json()
    assert body["job"]["status"] == "queued" and response.headers["Location"] == body["job"]["url"]
    await asyncio.to_thread(release, gate)
    assert (await blocker).status == 200
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    job = await (await client.get(body["job"]["url"])).json()
    assert job["status"] == "succeeded" and job["progress"]["records_written"] == 2
    download = await client.get(job["download"])
    assert list(csv.reader(io.StringIO(await download.text()))) == [["a"], ["1"], ["2"]]


async def test_a_client_that_disconnects_frees_its_slot(export_client, tmp_path):
    client = await export_client(max_concurrent=1)
    gate = make_gate(tmp_path, "never")
    abandoned = asyncio.create_task(client.post("/export/run", json=gated(gate)))
    await poll_status(client, lambda s: s["concurrentExports"] == 1)
    abandoned.cancel()  # the client goes away mid-export
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    await poll_status(client, lambda s: s["concurrentExports"] == 0)
    jobs = (await (await client.get("/export/jobs")).json())["jobs"]
    assert [job["status"] for job in jobs] == ["cancelled"]
    assert leftovers(tmp_path / "exports") == []  # neither the partial file nor the spooled input stays
    response = await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}]})
    assert response.status == 200  # the slot (and its worker) serve the next export


async def test_overload_every_answer_is_200_or_429_and_every_200_has_its_rows(export_client, tmp_path):
    client = await export_client(max_concurrent=5, max_queue=5, queue_timeout_s=60.0)

    async def one(index: int):
        count = 200 + index * 37
        response = await client.post("/export/run", json={
            "format": "csv", "source": "synthetic", "params": {"records": count, "seed": index}})
        return count, response.status, response.headers.get("Retry-After"), await response.json()

    answers = await asyncio.gather(*(one(i) for i in range(30)))
    assert {status for _, status, _, _ in answers} <= {200, 429}
    assert any(status == 200 for _, status, _, _ in answers)
    for count, status, retry_after, body in answers:
        if status == 429:
            assert int(retry_after) >= 1 and body["error"]["code"] == "export_queue_full"
        else:
            rows = (tmp_path / "exports" / body["result"]["filename"]).read_text().splitlines()
            assert len(rows) == count + 1 == body["records"] + 1
    await poll_status(client, lambda s: s["concurrentExports"] == 0 and s["queueDepth"] == 0)


async def test_health_answers_while_exports_run(export_client, tmp_path):
    client = await export_client(max_concurrent=5)
    exports = [asyncio.create_task(client.post("/export/run", json={
        "format": "csv", "source": "synthetic", "params": {"records": 200_000}})) for _ in range(5)]
    await poll_status(client, lambda s: s["concurrentExports"] == 5)
    healthy = 0
    while not all(task.done() for task in exports):
        assert (await client.get("/health")).status == 200
        healthy += 1
    assert healthy > 1
    assert [(await task).status for task in exports] == [200] * 5
