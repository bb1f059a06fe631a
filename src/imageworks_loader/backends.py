"""A small OpenAI-compatible client for model servers, with every failure mapped to a BackendError.

All four backends (vLLM, Ollama, LMDeploy, llama.cpp) speak the chat-completions protocol, so one
client serves them. Each call has a connect timeout (a refused connection fails at once) and a read
timeout (a hung server cannot hang the loader).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import BackendError, BackendNotServing, BackendTimeout, BackendUnavailable

__all__ = ["BackendClient", "ChatAnswer", "ImagesRefused", "StreamEvent"]

# A 4xx whose text says this is about images means "this model cannot take images" (conclusive),
# not "the server is broken" (inconclusive).
_IMAGE_REFUSAL = re.compile(
    r"image|vision|multimodal|multi-modal|image_url|mm_|visual|clip|llava|not support.*(content|part)", re.I
)


class ImagesRefused(BackendError):
    """The backend answered 4xx with an error about images: the model does not take image input."""

    code = "images_refused"

    def __init__(self, endpoint: str, status: int, text: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.text = text
        super().__init__(f"Backend {endpoint} refused the image (HTTP {status}): {text[:200]}")


@dataclass(frozen=True)
class ChatAnswer:
    """One non-streamed chat completion: the answer text (content or reasoning) and timing."""

    content: str
    reasoning_content: str
    latency_ms: float
    usage: dict[str, Any]


@dataclass(frozen=True)
class StreamEvent:
    """One parsed SSE chunk of a streamed completion, stamped on arrival."""

    at: float  # time.perf_counter() on arrival
    content: str | None  # None when the chunk carries no content delta
    usage: dict[str, Any] | None


class BackendClient:
    """Talks to one model server's OpenAI-compatible ``/v1`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.endpoint,
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            headers=headers,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def list_models(self) -> list[str]:
        """Model ids the server says it serves (``GET /models``)."""
        with self._errors():
            r = self._client.get("/models")
        self._raise_for_status(r, images=False)
        data = self._json(r)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise BackendUnavailable(self.endpoint, "GET /models did not return an OpenAI model list")
        return [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id") is not None]

    def require_model(self, model_id: str) -> None:
        served = self.list_models()
        if model_id not in served:
            raise BackendNotServing(self.endpoint, model_id, served)

    def chat(self, model_id: str, messages: list[dict[str, Any]], *, max_tokens: int = 32,
             temperature: float = 0.0) -> ChatAnswer:
        """One chat completion; the answer may be in ``content`` or ``reasoning_content``."""
        body = {"model": model_id, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": False}
        started = time.perf_counter()
        with self._errors():
            r = self._client.post("/chat/completions", json=body)
        latency = (time.perf_counter() - started) * 1000
        self._raise_for_status(r, images=True)
        data = self._json(r)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise BackendUnavailable(self.endpoint, "the answer has no choices[0].message") from None
        content = message.get("content") if isinstance(message, dict) else None
        reasoning = message.get("reasoning_content") or message.get("reasoning") if isinstance(message, dict) else None
        return ChatAnswer(
            content=_text(content), reasoning_content=_text(reasoning), latency_ms=latency,
            usage=data.get("usage") or {} if isinstance(data, dict) else {},
        )

    def stream_chat(self, model_id: str, messages: list[dict[str, Any]], *, max_tokens: int,
                    temperature: float = 0.0) -> Iterator[StreamEvent]:
        """A streamed chat completion as parsed events, asking for usage in the last chunk."""
        body = {"model": model_id, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                "stream": True, "stream_options": {"include_usage": True}}
        with self._errors(), self._client.stream("POST", "/chat/completions", json=body) as r:
            if r.status_code >= 400:
                r.read()
                self._raise_for_status(r, images=False)
            for line in r.iter_lines():
                now = time.perf_counter()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    raise BackendUnavailable(self.endpoint, "the stream sent a chunk that is not JSON") from None
                if not isinstance(chunk, dict):
                    raise BackendUnavailable(self.endpoint, "the stream sent a chunk that is not an object")
                content = None
                choices = chunk.get("choices") or []
                if choices and isinstance(choices[0], dict):
                    delta = choices[0].get("delta") or {}
                    if isinstance(delta, dict):
                        for key in ("content", "reasoning_content", "reasoning"):
                            if isinstance(delta.get(key), str):
                                content = (content or "") + delta[key]
                usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
                yield StreamEvent(at=now, content=content, usage=usage)
        raise BackendUnavailable(self.endpoint, "the stream ended without [DONE]")

    # ------------------------------------------------------------------ helpers

    def _errors(self) -> _ErrorMap:
        return _ErrorMap(self)

    def _raise_for_status(self, r: httpx.Response, *, images: bool) -> None:
        if r.status_code < 400:
            return
        text = _error_text(r)
        if r.status_code in (401, 403):
            raise BackendUnavailable(self.endpoint, f"HTTP {r.status_code}: the server wants credentials ({text[:120]})")
        if images and 400 <= r.status_code < 500 and r.status_code not in (404, 408, 429) and _IMAGE_REFUSAL.search(text):
            raise ImagesRefused(self.endpoint, r.status_code, text)
        raise BackendUnavailable(self.endpoint, f"HTTP {r.status_code}: {text[:200]}")

    def _json(self, r: httpx.Response) -> Any:
        try:
            return r.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BackendUnavailable(self.endpoint, "the answer is not JSON") from None


class _ErrorMap:
    """Context manager: httpx failures become BackendError subclasses naming the endpoint."""

    def __init__(self, client: BackendClient) -> None:
        self.client = client

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, BackendError):
            return
        endpoint = self.client.endpoint
        if isinstance(exc, httpx.ConnectTimeout):
            raise BackendUnavailable(endpoint, "connection timed out") from None
        if isinstance(exc, httpx.TimeoutException):
            raise BackendTimeout(endpoint, self.client.timeout) from None
        if isinstance(exc, httpx.ConnectError):
            raise BackendUnavailable(endpoint, "connection refused or host unreachable") from None
        if isinstance(exc, (httpx.TransportError, httpx.DecodingError)):
            raise BackendUnavailable(endpoint, f"the connection failed ({type(exc).__name__})") from None
        if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            raise BackendUnavailable(endpoint, "the endpoint URL is invalid; fix base_url/host/port") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return " ".join(p.get("text", "") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _error_text(r: httpx.Response) -> str:
    try:
        data = r.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return r.text[:500]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message") or err)[:500]
        return str(err)[:500]
    return str(data)[:500]
