"""`decide_demand` over real HTTP with the credit file present: p99 latency.

Starts the platform with uvicorn on a temporary SQLite file seeded with the demo world (a champion
model trained on the synthetic world, listed demands with signed attestations), then times
``POST /api/v1/demands/{id}/decision`` as the operator, against ``GET /healthz`` on the same server
in the same run (the anchor: what any request costs here). Target: p99 ≤ 1 s.

    .venv/bin/python bench/decide_http.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "YUNRONG_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "YUNRONG_DEMO": "true",
            "YUNRONG_MODEL_DIR": f"{tmp}/models",
            "YUNRONG_LOG_LEVEL": "WARNING",
            "YUNRONG_MAIL_DIR": f"{tmp}/m",
        }
        cli = [sys.executable, "-m", "yunrong.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        log("seeding the demo world (trains the default model)…")
        subprocess.run([*cli, "demo", "seed"], env=env, check=True, capture_output=True)
        port = _port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "yunrong.asgi:app", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                for _ in range(300):
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        if server.poll() is not None:
                            raise SystemExit("the server did not start") from None
                        time.sleep(0.1)  # waiting for the server to come up, not timing anything
                token = http.post(
                    "/api/v1/auth/token",
                    data={"username": "operator@demo.yunrong.cn", "password": "yunrong-demo-2026"},
                ).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                demands = http.get("/api/v1/demands", params={"status": "listed"}, headers=auth).json()
                demand_id = demands[0]["id"]
                ours, anchor = [], []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    r = http.post(f"/api/v1/demands/{demand_id}/decision", headers=auth)
                    ours.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                    t0 = time.perf_counter()
                    http.get("/healthz")
                    anchor.append(time.perf_counter() - t0)
        finally:
            server.terminate()
            server.wait(timeout=10)
    p99, p99_anchor = float(np.percentile(ours, 99)), float(np.percentile(anchor, 99))
    log(
        f"decide_demand over HTTP: p50 {np.percentile(ours, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
        f"(target ≤ 1000 ms); GET /healthz p99 {p99_anchor * 1000:.1f} ms"
    )
    emit(
        "decide_demand_http_p99",
        p99 * 1000,
        "ms",
        "healthz_http_p99",
        p99_anchor * 1000,
        p50_ms=round(float(np.percentile(ours, 50)) * 1000, 1),
        target_ms=1000,
    )


if __name__ == "__main__":
    main()
