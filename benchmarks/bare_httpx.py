"""The floor for the sync benchmark: a bare async httpx loop sending pre-encoded bulk bodies.

No planning, no state, no encoding on the way: the bodies are bytes made before the clock starts.
Same connection limits, auth and headers as `ChaserClient`, the same number of requests in
flight (N workers pulling from one list), every answer checked for a 2xx status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass
class BareResult:
    requests: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


async def _send_all(
    base_url: str,
    api_key: str,
    api_secret: str,
    path: str,
    bodies: Sequence[tuple[int, bytes]],
    in_flight: int,
) -> int:
    async with httpx.AsyncClient(
        base_url=base_url,
        auth=httpx.BasicAuth(api_key, api_secret),
        timeout=httpx.Timeout(30.0, connect=5.0),
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
        headers={"accept": "application/json"},
    ) as http:
        next_index = 0
        sent = 0

        async def worker() -> None:
            nonlocal next_index, sent
            while next_index < len(bodies):
                _, body = bodies[next_index]
                next_index += 1
                response = await http.put(
                    path, content=body, headers={"content-type": "application/json"}
                )
                if response.status_code >= 300:
                    raise RuntimeError(
                        f"PUT {path}: HTTP {response.status_code}: {response.text[:300]}"
                    )
                sent += 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return sent


def send_bare(
    base_url: str,
    api_key: str,
    api_secret: str,
    resource: str,
    bodies: Sequence[tuple[int, bytes]],
    *,
    in_flight: int = 4,
) -> BareResult:
    """PUT every (rows, body) of `bodies` to /v1/bulk/<resource>; time it end to end."""
    started = time.perf_counter()
    requests = asyncio.run(
        _send_all(base_url, api_key, api_secret, f"/v1/bulk/{resource}", bodies, in_flight)
    )
    seconds = time.perf_counter() - started
    return BareResult(requests=requests, rows=sum(n for n, _ in bodies), seconds=seconds)
