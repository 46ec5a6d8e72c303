"""The API over real HTTP against a real server process, as `curl` would use it."""

from __future__ import annotations

import httpx

from yunrong.demo.seed import DEMO_PASSWORD


def test_token_from_create_token_reads_me(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": "investor@demo.yunrong.cn", "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        assert token.json()["token_type"] == "bearer"
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert me.status_code == 200
        assert me.json()["email"] == "investor@demo.yunrong.cn"
        assert me.json()["organisation"]["investor_kind"] == "person"
        assert me.headers["x-request-id"]


def test_problem_json_over_the_wire(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as http:
        response = http.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert http.get("/openapi.json").json()["info"]["title"] == "Yunrong API"
        assert http.get("/metrics").status_code == 200
