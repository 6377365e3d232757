"""A minimal Chaser-shaped HTTP sink for benchmarks: answers fast, stores nothing.

Not the emulator: no validation, no state, no auth check, no request limit. A raw asyncio
protocol (uvloop when installed) parses just enough HTTP/1.1 (request line, Content-Length,
keep-alive) and answers every bulk upsert with a valid Chaser answer, every entry inserted with
an id of its own, so a client parses ids and confirms exactly as against Chaser. Entries are
counted by their key field (`"invoice_id":` ...), not by parsing the JSON. `GET /_sink/stats`
returns the requests and entries it saw per object; `GET /v1/organisation` an organisation.

    python -m benchmarks.sink --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import Counter

# The key field of each object's entries, by the path's object segment.
KEYS = {
    "customers": b'"external_id":',
    "contact_persons": b'"external_id":',
    "invoices": b'"invoice_id":',
    "credit_notes": b'"credit_note_id":',
    "overpayments": b'"overpayment_id":',
}
ORGANISATION = json.dumps(
    {"data": {"id": "sink", "organisation_id": "sink", "name": "Benchmark sink"}}
).encode()


def _answer_template(n: int) -> str:
    ids = ",".join(f'{{"index":{i},"id":"sk%(seq)d.{i}"}}' for i in range(n))
    return f'{{"data":{{"modified_count":0,"inserted_count":{n},"inserted_ids":[{ids}]}}}}'


class Sink:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self.seq = 0
        self.templates: dict[int, str] = {}

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if method == "GET" and parts == ["_sink", "stats"]:
            stats = {"requests": self.requests, "entries": self.entries}
            return 200, json.dumps(stats).encode()
        if method == "GET" and parts[:2] == ["v1", "organisation"]:
            return 200, ORGANISATION
        if method == "PUT" and len(parts) >= 3 and parts[1] == "bulk":
            name = parts[-1]
            key = KEYS.get(name)
            if key is None:
                return 404, b'{"message":"entity not found","type":"not_found_error"}'
            n = body.count(key)
            if n == 0 and body:
                n = len(json.loads(body).get("entries") or [])
            self.seq += 1
            self.requests[name] += 1
            self.entries[name] += n
            template = self.templates.get(n)
            if template is None:
                template = self.templates[n] = _answer_template(n)
            return 200, (template % {"seq": self.seq}).encode()
        return 404, b'{"message":"entity not found","type":"not_found_error"}'


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies and keep-alive; one request at a time."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path, _ = head[0].split(" ", 2)
            status, payload = self.sink.answer(method, path, body)
            reason = b"OK" if status == 200 else b"Not Found"
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: keep-alive\r\n\r\n%s" % (status, reason, len(payload), payload)
            )


async def serve(host: str, port: int) -> None:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(sink), host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port))


if __name__ == "__main__":
    main()
