"""Caller images: check they are real images, bound their size, downscale, and keep paths in bounds.

Limits are checked before decoding: the byte size first, then the pixel count from the header alone, so
a decompression bomb is refused without ever being expanded in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ImagePathNotAllowed, ImageTooLarge, NotAnImage

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_SIDE",
    "PreparedImage",
    "decode_b64",
    "prepare_image",
    "read_image_file",
    "resolve_image_path",
]

MAX_IMAGE_BYTES = 20 * 1000 * 1000  # 20 MB
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels
MAX_SIDE = 1024  # long side sent to the model

# Formats models accept as-is; anything else Pillow can read is re-encoded as PNG.
_PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True)
class PreparedImage:
    """Image bytes ready to send, with their real MIME type and size."""

    data: bytes
    mime: str
    width: int
    height: int
    source: str  # what the caller gave, for messages ("image_b64", a file name)
    resized: bool = False

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def decode_b64(text: str) -> bytes:
    """Raw base64 or a ``data:<mime>;base64,`` URI, checked; too big is 413, not base64 is 400."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise NotAnImage("image_b64", "a data URI must be base64-encoded")
    if len(text) > (MAX_IMAGE_BYTES * 4) // 3 + 8:
        raise ImageTooLarge("image_b64", f"over {MAX_IMAGE_BYTES // 1_000_000} MB")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise NotAnImage("image_b64", "it is not valid base64") from None


def prepare_image(data: bytes, source: str) -> PreparedImage:
    """Validate with Pillow and downscale to at most MAX_SIDE on the long side."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(source, f"{len(data):,} bytes, the limit is {MAX_IMAGE_BYTES:,}")
    if not data:
        raise NotAnImage(source, "it is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
            fmt = probe.format or ""
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise ImageTooLarge(source, "too many pixels (decompression bomb)") from None
        raise NotAnImage(source) from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(source, f"{width}x{height} pixels, the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decode fully: truncated or corrupt data fails here
            if max(width, height) <= MAX_SIDE and fmt in _PASS_THROUGH:
                return PreparedImage(data, _PASS_THROUGH[fmt], width, height, source)
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if fmt == "JPEG":
                img.convert("RGB").save(out, "JPEG", quality=90)
                mime = "image/jpeg"
            else:
                png = img if img.mode in ("RGB", "RGBA", "L", "LA") else img.convert("RGBA")
                png.save(out, "PNG")
                mime = "image/png"
            return PreparedImage(out.getvalue(), mime, img.width, img.height, source,
                                 resized=(img.width, img.height) != (width, height))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise NotAnImage(source, "it could not be decoded") from None


def resolve_image_path(path: str, roots: tuple[Path, ...]) -> Path:
    """``path`` resolved (symlinks too) and required to stay inside one of ``roots``.

    Relative paths are taken from the first root. Containment is checked before existence, so the
    answer for a path outside the roots never reveals whether it exists.
    """
    if not path or "\x00" in path:
        raise NotAnImage("image_path", "it is empty or contains a NUL byte")
    resolved_roots = [r.resolve() for r in roots]
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = resolved_roots[0] / candidate
    try:
        real = candidate.resolve(strict=False)
    except (OSError, RuntimeError):  # symlink loop
        raise ImagePathNotAllowed(path) from None
    if not any(real == root or real.is_relative_to(root) for root in resolved_roots):
        raise ImagePathNotAllowed(path)
    if not real.is_file():
        raise NotAnImage(f"image_path {path!r}", "no such file under the image roots")
    return real


def read_image_file(path: Path, source: str) -> bytes:
    """Read at most MAX_IMAGE_BYTES + 1 bytes, so a huge file is refused without reading it all."""
    try:
        if os.path.getsize(path) > MAX_IMAGE_BYTES:
            raise ImageTooLarge(source, f"{os.path.getsize(path):,} bytes, the limit is {MAX_IMAGE_BYTES:,}")
        with open(path, "rb") as f:
            return f.read(MAX_IMAGE_BYTES + 1)
    except (FileNotFoundError, IsADirectoryError):
        raise NotAnImage(source, "no such file") from None
    except PermissionError:
        raise NotAnImage(source, "it is not readable") from None
