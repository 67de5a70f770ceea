"""With tokens, an export belongs to its token: others cannot see, download or delete it; admins can."""

from __future__ import annotations

import hashlib

import plugins.export as export
from host.testing import make_app


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_jobs_are_visible_only_to_their_owner_and_admins(aiohttp_client, tmp_path):
    tokens = [{"name": name, "sha256": hashlib.sha256(f"{name}-secret".encode()).hexdigest(), "admin": name == "ops"}
              for name in ("alice", "bob", "ops")]
    app = await make_app({"host": {"auth": {"tokens": tokens}},
                          "plugins": {"export": {"dir": str(tmp_path / "exports"), "max_concurrent": 1}}},
                         plugins=[export])
    client = await aiohttp_client(app)
    alice, bob, ops = bearer("alice-secret"), bearer("bob-secret"), bearer("ops-secret")
    assert (await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}]})).status == 401
    response = await client.post("/export/run", json={"format": "csv", "data": [{"a": 1}], "user": "bob"},
                                 headers=alice)
    body = await response.json()
    assert response.status == 200
    job = await (await client.get(body["job"]["url"], headers=alice)).json()
    assert job["user"] == "alice"  # a client cannot claim another user
    for method, url in (("GET", job["url"]), ("GET", job["download"]), ("DELETE", job["url"])):
        response = await client.request(method, url, headers=bob)
        assert response.status == 404, (method, url)
    assert (await (await client.get("/export/jobs", headers=bob)).json())["jobs"] == []
    assert [j["id"] for j in (await (await client.get("/export/jobs", headers=alice)).json())["jobs"]] == [job["id"]]
    assert [j["id"] for j in (await (await client.get("/export/jobs", headers=ops)).json())["jobs"]] == [job["id"]]
    assert (await client.get(job["download"], headers=ops)).status == 200
    assert (await (await client.delete(job["url"], headers=alice)).json())["status"] == "expired"
