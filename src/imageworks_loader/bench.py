"""Measure a model: streamed chat completions the loader sends and times itself.

Time to first token is when the first chunk carrying a content delta arrives (a role-only chunk does
not count; an empty-string delta does, since llama.cpp sends one for a token that ends mid-character).
Tokens are the backend's ``usage.completion_tokens`` when it reports them, else the content chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .backends import BackendClient
from .errors import BackendUnavailable
from .state import Sample

__all__ = ["DEFAULT_PROMPT", "BenchRequest", "measure_once", "run_bench"]

DEFAULT_PROMPT = "Write one short sentence about the sea."


@dataclass(frozen=True)
class BenchRequest:
    requests: int = 10
    max_tokens: int = 64
    prompt: str = DEFAULT_PROMPT
    concurrency: int = 1


def measure_once(client: BackendClient, model_id: str, *, prompt: str, max_tokens: int) -> Sample:
    """One streamed request, timed from sending to the final chunk."""
    started = time.perf_counter()
    first: float | None = None
    last = started
    chunks = 0
    usage_tokens: int | None = None
    for event in client.stream_chat(model_id, [{"role": "user", "content": prompt}], max_tokens=max_tokens):
        last = event.at
        if event.content is not None:
            chunks += 1
            if first is None:
                first = event.at
        if event.usage and isinstance(event.usage.get("completion_tokens"), int):
            usage_tokens = event.usage["completion_tokens"]
    if first is None:
        raise BackendUnavailable(client.endpoint, "the stream finished without any content chunk")
    return Sample(
        ttft_ms=(first - started) * 1000,
        tokens_generated=usage_tokens if usage_tokens is not None else chunks,
        duration_ms=(last - started) * 1000,
        at=time.time(),
    )


def run_bench(
    client: BackendClient,
    model_id: str,
    spec: BenchRequest,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Sample]:
    """``spec.requests`` measurements, ``spec.concurrency`` at a time; any failure fails the whole run."""
    def one(_: int) -> Sample:
        sample = measure_once(client, model_id, prompt=spec.prompt, max_tokens=spec.max_tokens)
        if progress is not None:
            progress(1)
        return sample

    if spec.concurrency <= 1:
        return [one(i) for i in range(spec.requests)]
    with ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="iwl-bench") as pool:
        return list(pool.map(one, range(spec.requests)))
