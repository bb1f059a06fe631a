"""The vision probe: proof that a model sees, by a challenge whose answer is checked.

The loader draws one large filled shape in a colour picked at random from a fixed palette of seven and
asks "What colour is the shape? Answer with one word." Two rounds with different colours; the model is
``verified`` only if each answer names the right colour and no other palette colour. A text-only model
that guesses passes with a chance of 1/7 * 1/7, about 2 percent.

Three outcomes, never two: ``verified``; ``not_supported`` (a wrong answer, or the backend refused the
image with an error about images); ``unknown`` (backend down, timeout, 5xx, auth, garbage). Only the
first two are conclusive.
"""

from __future__ import annotations

import io
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .backends import BackendClient, ImagesRefused
from .errors import BackendError
from .images import PreparedImage

__all__ = [
    "CHALLENGE_QUESTION",
    "DESCRIBE_PROMPT",
    "PALETTE",
    "PROBE_VERSION",
    "Outcome",
    "ProbeResult",
    "Round",
    "challenge_image",
    "named_colours",
    "run_vision_probe",
]

PROBE_VERSION = "colour-challenge-v1"
CHALLENGE_QUESTION = "What colour is the shape? Answer with one word."
DESCRIBE_PROMPT = "Describe this image succinctly."
IMAGE_SIZE = 320  # at least 256x256, per the contract

#: The fixed palette: far apart in hue and lightness so any seeing model names them without doubt.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 220, 20),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "purple": (130, 40, 170),
    "black": (15, 15, 15),
}
# Words that name a palette colour in an answer (whole words, any case).
_COLOUR_WORDS = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange",),
    "yellow": ("yellow",),
    "green": ("green",),
    "blue": ("blue",),
    "purple": ("purple", "violet"),
    "black": ("black",),
}
_WORD_RE = {c: re.compile(r"\b(" + "|".join(ws) + r")\b", re.I) for c, ws in _COLOUR_WORDS.items()}
_SHAPES = ("circle", "square", "triangle", "diamond")


class Outcome(StrEnum):
    VERIFIED = "verified"
    NOT_SUPPORTED = "not_supported"
    UNKNOWN = "unknown"

    @property
    def conclusive(self) -> bool:
        return self is not Outcome.UNKNOWN


@dataclass(frozen=True)
class Round:
    """One challenge round: what was drawn, what came back, whether it passed."""

    colour: str
    shape: str
    answer: str
    named: tuple[str, ...]
    passed: bool
    latency_ms: float


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found. ``error`` explains an ``unknown`` (or a refused image)."""

    name: str
    outcome: Outcome
    probe_version: str
    latency_ms: float
    rounds: tuple[Round, ...] = ()
    description: str | None = None
    error: str | None = None
    error_code: str | None = None
    timestamp: str = ""
    image: dict[str, Any] | None = field(default=None)

    @property
    def vision_ok(self) -> bool | None:
        return {Outcome.VERIFIED: True, Outcome.NOT_SUPPORTED: False}.get(self.outcome)

    def notes(self) -> str:
        """Human-readable notes with the answers, as stored in ``probes.vision.notes``."""
        parts = [
            f"round {i}: {r.shape} in {r.colour}, answered \"{_printable(r.answer[:80])}\" "
            f"({'pass' if r.passed else 'fail'})"
            for i, r in enumerate(self.rounds, 1)
        ]
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "vision_ok": self.vision_ok,
            "probe_version": self.probe_version,
            "latency_ms": round(self.latency_ms, 1),
            "timestamp": self.timestamp,
            "rounds": [
                {"colour": r.colour, "shape": r.shape, "answer": r.answer, "named": list(r.named),
                 "passed": r.passed, "latency_ms": round(r.latency_ms, 1)}
                for r in self.rounds
            ],
            "description": self.description,
            "image": self.image,
            "error": self.error,
            "notes": self.notes(),
        }


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def named_colours(answer: str) -> tuple[str, ...]:
    """The palette colours an answer names, as whole words, in palette order."""
    return tuple(c for c, rx in _WORD_RE.items() if rx.search(answer))


def challenge_image(colour: str, shape: str, rng: random.Random) -> bytes:
    """A PNG of one large filled shape in ``colour`` on white, jittered so no two are identical."""
    from PIL import Image, ImageDraw

    size = IMAGE_SIZE
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    margin = rng.randint(24, 48)
    dx, dy = rng.randint(-12, 12), rng.randint(-12, 12)
    box = (margin + dx, margin + dy, size - margin + dx, size - margin + dy)
    fill = PALETTE[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((box[0] + box[2]) // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    else:
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        draw.polygon([(cx, box[1]), (box[2], cy), (cx, box[3]), (box[0], cy)], fill=fill)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _image_message(prompt: str, data_uri: str) -> list[dict[str, Any]]:
    return [{
        "role": "user",
        "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": data_uri}},
        ],
    }]


def _answer_text(content: str, reasoning: str) -> str:
    """The content, unless the answer is only in the reasoning (some servers put it there)."""
    content, reasoning = content.strip(), reasoning.strip()
    if named_colours(content) or not reasoning:
        return content
    if named_colours(reasoning) or not content:
        return reasoning
    return content


def run_vision_probe(
    client: BackendClient,
    *,
    name: str,
    model_id: str,
    rng: random.Random | None = None,
    image: PreparedImage | None = None,
    rounds: int = 2,
    timestamp: str = "",
) -> ProbeResult:
    """Run the challenge (and describe the caller's image, if any); never raises for backend failures."""
    import base64

    rng = rng or random.SystemRandom()
    colours: Sequence[str] = rng.sample(sorted(PALETTE), rounds)
    started = time.perf_counter()
    done: list[Round] = []
    outcome = Outcome.VERIFIED
    error = code = None
    try:
        for colour in colours:
            shape = rng.choice(_SHAPES)
            png = challenge_image(colour, shape, rng)
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            answer = client.chat(model_id, _image_message(CHALLENGE_QUESTION, uri), max_tokens=16)
            text = _answer_text(answer.content, answer.reasoning_content)
            named = named_colours(text)
            passed = named == (colour,)
            done.append(Round(colour, shape, text, named, passed, answer.latency_ms))
            if not passed:
                outcome = Outcome.NOT_SUPPORTED
                break
    except ImagesRefused as exc:
        outcome, error, code = Outcome.NOT_SUPPORTED, exc.message, exc.code
    except BackendError as exc:
        outcome, error, code = Outcome.UNKNOWN, exc.message, exc.code
    description = None
    if image is not None and outcome is not Outcome.UNKNOWN:
        try:
            answer = client.chat(model_id, _image_message(DESCRIBE_PROMPT, image.data_uri()), max_tokens=128)
            description = _answer_text(answer.content, answer.reasoning_content)
        except BackendError as exc:  # the challenge result stands; say why there is no description
            error = error or f"describing the caller's image failed: {exc.message}"
    return ProbeResult(
        name=name,
        outcome=outcome,
        probe_version=PROBE_VERSION,
        latency_ms=(time.perf_counter() - started) * 1000,
        rounds=tuple(done),
        description=description,
        error=error,
        error_code=code,
        timestamp=timestamp,
        image=None if image is None else {"mime": image.mime, "width": image.width, "height": image.height,
                                          "resized": image.resized, "source": image.source},
    )
