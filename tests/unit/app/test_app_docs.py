"""/openapi.json describes the app's own routes, /docs shows it from the app's own files, and a
method a route does not take gets 405 in the app's error shape."""

from __future__ import annotations

import re

import pytest
from app.docs import ASSET_NAMES
from fastapi.testclient import TestClient

OWN_ROUTES = {
    "/livez": {"get"},
    "/readyz": {"get"},
    "/api/sentiment": {"post"},
    "/api/generate": {"post"},
    "/metrics": {"get"},
}


def test_the_schema_lists_the_app_routes_and_nothing_of_the_ui(
    positive_client: TestClient,
) -> None:
    response = positive_client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {path: set(operations) for path, operations in paths.items()} == OWN_ROUTES


def test_the_request_schema_carries_the_limits(positive_client: TestClient) -> None:
    paths = positive_client.get("/openapi.json").json()["paths"]
    body = paths["/api/sentiment"]["post"]["requestBody"]
    one, many = body["content"]["application/json"]["schema"]["anyOf"]
    assert one["properties"]["text"]["maxLength"] == 50  # the test app's max_text_chars
    assert many["properties"]["texts"]["maxItems"] == 4  # its max_texts
    assert body["required"] is True
    assert paths["/api/generate"]["post"]["requestBody"]["required"] is False


def test_every_error_status_is_documented_with_the_error_shape(
    positive_client: TestClient,
) -> None:
    schema = positive_client.get("/openapi.json").json()
    responses = schema["paths"]["/api/generate"]["post"]["responses"]
    assert set(responses) == {"200", "400", "413", "422", "502", "503", "504"}
    error = responses["503"]["content"]["application/json"]["schema"]["$ref"]
    assert error == "#/components/schemas/ErrorBody"
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "detail"}


def test_the_docs_page_loads_only_files_the_app_serves(positive_client: TestClient) -> None:
    page = positive_client.get("/docs")
    assert page.status_code == 200
    assert "'/openapi.json'" in page.text
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(referenced) == sorted(f"/docs/assets/{name}" for name in ASSET_NAMES)
    assert "//" not in "".join(referenced)  # no other host, not even protocol-relative
    for url in referenced:
        asset = positive_client.get(url)
        assert asset.status_code == 200
        assert len(asset.content) > 100
    assert '"validatorUrl": null' in page.text  # no badge fetched from an outside validator


def test_an_unknown_docs_asset_is_a_404(positive_client: TestClient) -> None:
    assert positive_client.get("/docs/assets/..%2Fcore.py").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/sentiment", "POST"),
        ("PUT", "/api/generate", "POST"),
        ("DELETE", "/api/sentiment", "POST"),
        ("POST", "/livez", "GET"),
        ("PATCH", "/readyz", "GET"),
        ("POST", "/metrics", "GET"),
    ],
)
def test_a_method_a_route_does_not_take_is_a_405(
    positive_client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = positive_client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {
        "error": "method_not_allowed",
        "detail": f"{path} does not take {method}; use {allowed}",
    }
