import base64
import io
import os

import pytest
from PIL import Image

from imageworks_loader.errors import ImagePathNotAllowed, ImageTooLarge, NotAnImage
from imageworks_loader.images import (
    MAX_IMAGE_BYTES,
    decode_b64,
    prepare_image,
    read_image_file,
    resolve_image_path,
)


def png(w=64, h=64, colour=(255, 0, 0), fmt="PNG"):
    out = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(out, fmt)
    return out.getvalue()


def test_small_png_and_jpeg_pass_through_with_real_mime():
    p = prepare_image(png(), "x")
    assert (p.mime, p.width, p.resized) == ("image/png", 64, False)
    j = prepare_image(png(fmt="JPEG"), "x")
    assert j.mime == "image/jpeg" and j.data_uri().startswith("data:image/jpeg;base64,")


def test_large_image_is_downscaled_to_1024_long_side():
    p = prepare_image(png(3000, 1500, fmt="JPEG"), "x")
    assert (p.width, p.height, p.resized, p.mime) == (1024, 512, True, "image/jpeg")


def test_bmp_is_reencoded_as_png():
    assert prepare_image(png(fmt="BMP"), "x").mime == "image/png"


def test_text_file_named_png_is_not_an_image(tmp_path):
    f = tmp_path / "fake.png"
    f.write_text("hello, I am text")
    with pytest.raises(NotAnImage, match="not a readable image"):
        prepare_image(read_image_file(f, "fake.png"), "fake.png")


def test_truncated_png_is_not_an_image():
    with pytest.raises(NotAnImage):
        prepare_image(png(200, 200)[:120], "x")


def test_empty_is_not_an_image():
    with pytest.raises(NotAnImage, match="empty"):
        prepare_image(b"", "x")


def test_oversized_bytes_are_refused_before_decoding(tmp_path):
    with pytest.raises(ImageTooLarge, match="limit"):
        prepare_image(b"\x89PNG" + b"0" * MAX_IMAGE_BYTES, "x")
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(MAX_IMAGE_BYTES + 1)
    with pytest.raises(ImageTooLarge):
        read_image_file(big, "big.png")


def test_decompression_bomb_is_refused_from_the_header():
    # A 20000x20000 (400 Mpx) 1-bit PNG compresses to a few KB; decoding it would take 400 MB.
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    assert len(out.getvalue()) < 200_000
    with pytest.raises(ImageTooLarge, match="pixels"):
        prepare_image(out.getvalue(), "bomb.png")


def test_b64_decoding():
    raw = png()
    assert decode_b64(base64.b64encode(raw).decode()) == raw
    assert decode_b64("data:image/png;base64," + base64.b64encode(raw).decode()) == raw
    with pytest.raises(NotAnImage, match="base64"):
        decode_b64("not base64 !!!")
    with pytest.raises(ImageTooLarge):
        decode_b64("A" * (MAX_IMAGE_BYTES * 2))


def test_paths_resolve_inside_roots_only(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    img = root / "sub" / "a.png"
    img.write_bytes(png())
    outside = tmp_path / "secret.png"
    outside.write_bytes(png())
    (root / "link.png").symlink_to(outside)
    (root / "inner-link.png").symlink_to(img)
    roots = (root,)
    assert resolve_image_path("sub/a.png", roots) == img.resolve()
    assert resolve_image_path(str(img), roots) == img.resolve()
    assert resolve_image_path("inner-link.png", roots) == img.resolve()
    for bad in ("../secret.png", str(outside), "link.png", "sub/../../secret.png", "/etc/passwd"):
        with pytest.raises(ImagePathNotAllowed):
            resolve_image_path(bad, roots)
    with pytest.raises(ImagePathNotAllowed):  # outside and missing: same answer as outside and present
        resolve_image_path("../does-not-exist.png", roots)
    with pytest.raises(NotAnImage, match="no such file"):
        resolve_image_path("sub/missing.png", roots)
    with pytest.raises(NotAnImage):
        resolve_image_path("", roots)


def test_several_roots(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (b / "x.png").write_bytes(png())
    assert resolve_image_path(str(b / "x.png"), (a, b)) == (b / "x.png").resolve()
    os.chmod(b / "x.png", 0o644)
