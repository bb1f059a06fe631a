import io
import random

import pytest
from PIL import Image

from imageworks_loader.backends import BackendClient
from imageworks_loader.probe import PALETTE, Outcome, challenge_image, named_colours, run_vision_probe

from .backend.reference import Behaviour, ReferenceBackend, dominant_colour_name


@pytest.mark.parametrize("answer, named", [
    ("Red.", ("red",)), ("The shape is RED", ("red",)), ("reddish", ()), ("shared", ()),
    ("Blue or green", ("green", "blue")), ("violet", ("purple",)), ("", ()), ("Crimson!", ("red",)),
])
def test_named_colours_matches_whole_words(answer, named):
    assert named_colours(answer) == named


@pytest.mark.parametrize("colour", sorted(PALETTE))
@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "diamond"])
def test_challenge_image_is_big_and_shows_the_colour(colour, shape):
    png = challenge_image(colour, shape, random.Random(1))
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and min(img.size) >= 256
    assert dominant_colour_name(png) == colour


def test_palette_makes_guessing_pass_about_two_percent():
    assert len(PALETTE) == 7  # two rounds: (1/7)^2 = 2.04 %
    assert abs((1 / len(PALETTE)) ** 2 - 0.02) < 0.001


def probe(behaviour, **kw):
    with ReferenceBackend(behaviour) as ref, BackendClient(ref.endpoint, timeout=kw.pop("timeout", 5)) as c:
        return run_vision_probe(c, name="m", model_id="ref-model", rng=random.Random(7), **kw), ref


def test_a_model_that_sees_is_verified_and_rounds_use_different_colours():
    result, ref = probe(Behaviour(mode="seeing"))
    assert result.outcome is Outcome.VERIFIED and result.vision_ok is True
    assert len(result.rounds) == 2 and result.rounds[0].colour != result.rounds[1].colour
    content = ref.behaviour.requests[0]["messages"][0]["content"]
    assert content[0]["text"] == "What colour is the shape? Answer with one word."
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_answer_in_reasoning_content_is_read():
    result, _ = probe(Behaviour(mode="seeing", in_reasoning=True))
    assert result.outcome is Outcome.VERIFIED


def test_constant_answer_is_not_supported():
    result, _ = probe(Behaviour(mode="constant", constant="Red."))
    assert result.outcome is Outcome.NOT_SUPPORTED and result.vision_ok is False


def test_naming_two_colours_fails_the_round():
    result, _ = probe(Behaviour(mode="constant", constant="red green blue orange yellow purple black"))
    assert result.outcome is Outcome.NOT_SUPPORTED


def test_image_refusal_is_not_supported():
    result, _ = probe(Behaviour(mode="refuse"))
    assert result.outcome is Outcome.NOT_SUPPORTED and "does not support image" in result.error


@pytest.mark.parametrize("mode", ["error500", "garbage", "auth"])
def test_server_failures_are_unknown(mode):
    result, _ = probe(Behaviour(mode=mode))
    assert result.outcome is Outcome.UNKNOWN and result.vision_ok is None and result.error


def test_hung_backend_is_unknown_within_the_read_timeout():
    import time

    started = time.monotonic()
    result, _ = probe(Behaviour(mode="hang", hang_s=5), timeout=0.5)
    assert result.outcome is Outcome.UNKNOWN and result.error_code == "backend_timeout"
    assert time.monotonic() - started < 4


def test_dead_backend_is_unknown_at_once():
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with BackendClient(f"http://127.0.0.1:{port}/v1", timeout=30) as c:
        result = run_vision_probe(c, name="m", model_id="x")
    assert result.outcome is Outcome.UNKNOWN and result.error_code == "backend_unavailable"
    assert time.monotonic() - started < 2
