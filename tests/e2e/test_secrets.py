"""Secrets under wrangler dev: stored sealed, listed by name and metadata only, per principal."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from harness import expect
from harness.api import Api


def secret_name() -> str:
    return f"TOKEN_{uuid.uuid4().hex[:8].upper()}"


def test_values_are_never_shown_or_stored_in_the_clear(api: Api, worker):
    name, value = secret_name(), f"value-{uuid.uuid4().hex}"
    resp = api.request("PUT", f"/api/secrets/{name}", json={"value": value, "hosts": ["API.example.com"]})
    assert resp.status_code == 200, resp.text
    meta = resp.json()
    assert meta["name"] == name and meta["hosts"] == ["api.example.com"] and meta["inject"] == {"kind": "bearer"}
    assert value not in resp.text
    listed = api.get("/api/secrets")
    assert name in [s["name"] for s in listed.json()["secrets"]] and value not in listed.text

    replaced = api.request(
        "PUT", f"/api/secrets/{name}", json={"value": value + "2", "hosts": ["*.example.com"], "inject": {"kind": "header", "name": "X-Api-Key"}}
    ).json()
    assert replaced["created_at"] == meta["created_at"] and replaced["inject"] == {"kind": "header", "name": "X-Api-Key"}

    stored = [p for p in Path(worker.state_dir).rglob("*") if p.is_file()]
    assert stored, "the worker persisted its objects"
    assert not any(value.encode() in p.read_bytes() for p in stored), "a plaintext value reached storage"

    assert api.delete(f"/api/secrets/{name}").json() == {"deleted": True}
    expect.api_error(api.delete(f"/api/secrets/{name}"), 404, "secret_not_found")
    assert name not in api.get("/api/secrets").text


def test_secrets_belong_to_their_principal(api: Api, bob: Api):
    name = secret_name()
    assert api.request("PUT", f"/api/secrets/{name}", json={"value": "alice-only-value", "hosts": ["x.example"]}).status_code == 200
    assert name not in bob.get("/api/secrets").text
    expect.api_error(bob.delete(f"/api/secrets/{name}"), 404, "secret_not_found")
    expect.api_error(api.get("/api/secrets", token=None), 401)


def test_bad_secrets_are_refused_clearly(api: Api):
    put = lambda name, body: api.request("PUT", f"/api/secrets/{name}", json=body)  # noqa: E731
    assert "hosts" in expect.api_error(put("K1", {"value": "v", "hosts": []}), 400, "invalid_secret")["message"]
    expect.api_error(put("K1", {"value": "v", "hosts": ["not a host"]}), 400, "invalid_secret")
    expect.api_error(put("bad%20name", {"value": "v", "hosts": ["x.example"]}), 400, "invalid_secret")
    expect.api_error(put("K1", {"value": "", "hosts": ["x.example"]}), 400, "invalid_secret")
    expect.api_error(put("K1", {"value": "v" * (16 * 1024 + 1), "hosts": ["x.example"]}), 400, "invalid_secret")
    expect.api_error(put("K1", {"value": "v", "hosts": ["x.example"], "extra": 1}), 400, "invalid_secret")
    expect.api_error(put("K1", {"value": "v", "hosts": ["x.example"], "inject": {"kind": "header", "name": "a b"}}), 400, "invalid_secret")
    bad_json = api.request("PUT", "/api/secrets/K1", content=b"{nope", headers={"content-type": "application/json"})
    expect.api_error(bad_json, 400, "invalid_json")
    expect.api_error(api.get("/api/secrets/K1"), 405, "method_not_allowed")


def test_without_a_master_key_the_vault_is_unavailable(worker_factory):
    api = Api(worker_factory({"EDGECLAW_MASTER_KEY": None}).url)
    body = expect.api_error(api.request("PUT", "/api/secrets/K1", json={"value": "v", "hosts": ["x.example"]}), 503, "vault_not_configured")
    assert "EDGECLAW_MASTER_KEY" in body["message"]


NEW_MASTER_KEY = "c2Vjb25kIDMyLWJ5dGUga2V5LCBmb3IgdGVzdHMhISE="  # 32 bytes


def test_a_master_key_rotation_reseals_every_record(worker_factory):
    from conftest import MASTER_KEY

    worker = worker_factory()
    api = Api(worker.url)
    for name in ("ROTATE_A", "ROTATE_B"):
        assert api.request("PUT", f"/api/secrets/{name}", json={"value": f"v-{name}", "hosts": ["x.example"]}).status_code == 200

    worker.vars["EDGECLAW_MASTER_KEY"] = NEW_MASTER_KEY  # the old key is gone: nothing can be read
    worker.restart()
    api = Api(worker.url)
    assert api.post("/api/secrets/rotate").json() == {"rotated": 0, "current": 0, "unreadable": ["ROTATE_A", "ROTATE_B"]}

    worker.vars["EDGECLAW_MASTER_KEY_PREVIOUS"] = MASTER_KEY
    worker.restart()
    api = Api(worker.url)
    assert api.post("/api/secrets/rotate").json() == {"rotated": 2, "current": 0, "unreadable": []}
    assert api.post("/api/secrets/rotate").json() == {"rotated": 0, "current": 2, "unreadable": []}
    assert [s["name"] for s in api.get("/api/secrets").json()["secrets"]] == ["ROTATE_A", "ROTATE_B"]
