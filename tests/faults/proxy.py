"""A fault-injecting HTTP proxy on loopback, in front of a real `tenancy serve`.

Each request is either forwarded untouched or, with probability about `rate`, meets one fault:

    429         answered 429 with Retry-After, not forwarded
    503         answered 503, not forwarded
    reset       the connection is reset (TCP RST) before anything is forwarded
    reset-after forwarded, the backend answers, then the connection is reset: the client never learns
                that its request was processed (the case idempotency keys and If-Match exist for)
    504-after   forwarded and processed, then answered 504 Gateway Timeout
    slow        forwarded, the answer held back for 0.3 to 1.2 s

A request (same method, path, Idempotency-Key, If-Match and body) meets at most `max_streak` faults in
a row, so that the client's bounded retries always get through eventually; everything is recorded.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "503", "reset", "reset-after", "504-after", "slow")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Seen:
    """One request as the proxy saw it."""

    at: float
    method: str
    path: str
    fingerprint: str
    fault: str | None
    retry_after: float | None = None


@dataclass
class Record:
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def faults(self) -> Counter[str]:
        return Counter(s.fault for s in self.requests if s.fault)

    def processed_then_lost(self) -> Counter[str]:
        """Requests the backend processed whose answer never reached the client, by method and route."""
        return Counter(
            f"{s.method} {s.path.split('?')[0]}" for s in self.requests if s.fault in ("reset-after", "504-after")
        )

    @property
    def fault_rate(self) -> float:
        return sum(self.faults().values()) / max(1, len(self.requests))

    def retry_gaps_after_429(self) -> list[tuple[float, float]]:
        """(Retry-After, seconds until the same request came again) for every 429 the proxy sent."""
        out = []
        by_print: dict[str, list[Seen]] = {}
        for s in self.requests:
            by_print.setdefault(s.fingerprint, []).append(s)
        for seen in by_print.values():
            for a, b in itertools.pairwise(seen):
                if a.fault == "429" and a.retry_after is not None:
                    out.append((a.retry_after, b.at - a.at))
        return out


class FaultProxy:
    """`forced`: (method, path prefix, fault) triples, each imposed on the first request that matches it,
    so that the interesting cases happen in every run whatever the dice say."""

    def __init__(
        self,
        upstream_port: int,
        rate: float = 0.25,
        seed: int = 0,
        max_streak: int = 3,
        retry_after: float = 1.0,
        forced: list[tuple[str, str, str]] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self.max_streak = max_streak
        self.retry_after = retry_after
        self.forced = list(forced or [])
        self.rng = random.Random(seed)
        self.record = Record()
        self._streaks: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def choose(self, fingerprint: str, method: str, path: str) -> Seen:
        with self.record.lock:
            fault = None
            # Random, but steered towards `rate`: the further the faults so far fall behind (or run ahead of)
            # rate × requests, the likelier (or less likely) the next one, so every run lands near `rate`.
            sent, faulted = len(self.record.requests), sum(1 for s in self.record.requests if s.fault)
            chance = min(1.0, max(0.0, self.rate + (self.rate * sent - faulted) / 20))
            if self._streaks[fingerprint] < self.max_streak and self.rng.random() < chance:
                fault = self.rng.choice(FAULTS)
            for rule in self.forced:
                if method == rule[0] and path.startswith(rule[1]) and self._streaks[fingerprint] == 0:
                    fault = rule[2]
                    self.forced.remove(rule)
                    break
            self._streaks[fingerprint] = self._streaks[fingerprint] + 1 if fault else 0
            seen = Seen(time.monotonic(), method, path, fingerprint, fault)
            if fault == "429":
                seen.retry_after = self.retry_after
            self.record.requests.append(seen)
            return seen

    def slow_delay(self) -> float:
        with self.record.lock:
            return self.rng.uniform(0.3, 1.2)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _fingerprint(self, body: bytes) -> str:
                parts = [
                    self.command,
                    self.path,
                    self.headers.get("Idempotency-Key", ""),
                    self.headers.get("If-Match", ""),
                    hashlib.sha256(body).hexdigest(),
                ]
                return "\x00".join(parts)

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _problem(self, status: int, detail: str, extra: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
                body = (
                    f'{{"type":"about:blank","status":{status:d},"title":"injected","detail":"{detail}","errors":[]}}'
                ).encode()
                self._answer(status, [("Content-Type", "application/problem+json"), *extra], body)

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=600)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    return response.status, response.getheaders(), response.read()
                finally:
                    upstream.close()

            def _handle(self) -> None:
                body = self._body()
                seen = proxy.choose(self._fingerprint(body), self.command, self.path)
                if seen.fault == "429":
                    self._problem(429, "injected rate limit", [("Retry-After", f"{proxy.retry_after:g}")])
                    return
                if seen.fault == "503":
                    self._problem(503, "injected unavailability")
                    return
                if seen.fault == "reset":
                    self._reset()
                    return
                status, headers, payload = self._forward(body)
                if seen.fault == "reset-after":
                    self._reset()
                    return
                if seen.fault == "504-after":
                    self._problem(504, "injected gateway timeout")
                    return
                if seen.fault == "slow":
                    time.sleep(proxy.slow_delay())
                self._answer(status, headers, payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler
