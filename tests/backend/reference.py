"""A small OpenAI-compatible reference backend for tests, on a real loopback socket.

Unlike the tiny random models it answers *correctly*: in ``seeing`` mode it reads the attached image
with Pillow and names the shape's colour, so the probe's ``verified`` path is proven end to end. Other
modes model real failure shapes: a text-only guesser, an image refusal, a hang, garbage, a 500, and a
streaming server with known delays (for TTFT and throughput checks).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PALETTE = {
    "red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (245, 220, 20), "green": (30, 160, 60),
    "blue": (30, 70, 220), "purple": (130, 40, 170), "black": (15, 15, 15),
}


def dominant_colour_name(data: bytes) -> str:
    """Name the palette colour nearest to the most common non-white pixel colour."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((64, 64))
        counts = rgb.getcolors(64 * 64) or []
    counts = [(n, c) for n, c in counts if sum(c) < 720]  # drop the white background
    _, colour = max(counts)
    return min(PALETTE, key=lambda name: sum((a - b) ** 2 for a, b in zip(PALETTE[name], colour, strict=True)))


@dataclass
class Behaviour:
    """What the reference backend does; tests change it between requests."""

    mode: str = "seeing"  # seeing | constant | refuse | hang | garbage | error500 | auth
    constant: str = "Red."
    in_reasoning: bool = False  # answer in reasoning_content instead of content
    hang_s: float = 30.0
    models: tuple[str, ...] = ("ref-model",)
    first_token_s: float = 0.2  # streaming: delay before the first content chunk
    token_interval_s: float = 0.01  # streaming: delay between content chunks
    stream_usage: bool = True
    stream_break_after: int | None = None  # close the stream abruptly after N chunks
    requests: list[dict[str, Any]] = field(default_factory=list)


class ReferenceBackend:
    """Start with ``with ReferenceBackend() as ref:``; ``ref.endpoint`` is its ``/v1`` URL."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        handler = _make_handler(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReferenceBackend:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(ref: ReferenceBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode())

        def do_GET(self) -> None:
            b = ref.behaviour
            if self.path.rstrip("/") == "/v1/models":
                if b.mode == "error500":
                    self._json(500, {"error": {"message": "boom"}})
                    return
                self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in b.models]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            b = ref.behaviour
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            b.requests.append(body)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found"}})
                return
            if body.get("stream"):
                self._stream(body)
                return
            if b.mode == "hang":
                time.sleep(b.hang_s)
            if b.mode == "refuse":
                self._json(400, {"error": {"message": "This model does not support image input.",
                                           "type": "invalid_request_error"}})
                return
            if b.mode == "error500":
                self._json(500, {"error": {"message": "CUDA out of memory"}})
                return
            if b.mode == "auth":
                self._json(401, {"error": {"message": "invalid api key"}})
                return
            if b.mode == "garbage":
                self._send(200, b"<html>definitely not json", "text/html")
                return
            answer = b.constant if b.mode == "constant" else self._see(body)
            message = {"role": "assistant", "content": "" if b.in_reasoning else answer}
            if b.in_reasoning:
                message["reasoning_content"] = answer
            self._json(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                             "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})

        def _see(self, body: dict[str, Any]) -> str:
            for message in body.get("messages", []):
                content = message.get("content")
                if not isinstance(content, list):
                    continue
                prompt = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
                for part in content:
                    if part.get("type") == "image_url":
                        uri = part["image_url"]["url"]
                        data = base64.b64decode(uri.split(",", 1)[1])
                        colour = dominant_colour_name(data)
                        if prompt.startswith("Describe"):
                            return f"A picture dominated by {colour}."
                        return colour.capitalize() + "."
            return "I see no image."

        def _stream(self, body: dict[str, Any]) -> None:
            b = ref.behaviour
            n = int(body.get("max_tokens") or 16)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()

            def emit(obj: Any) -> None:
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

            emit({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
            time.sleep(b.first_token_s)
            for i in range(n):
                if b.stream_break_after is not None and i >= b.stream_break_after:
                    self.close_connection = True
                    return  # abrupt end: no [DONE]
                if b.mode == "garbage" and i == 2:
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                if i:
                    time.sleep(b.token_interval_s)
                emit({"choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]})
            emit({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
            if b.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
                emit({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler
