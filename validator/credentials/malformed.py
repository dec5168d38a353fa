"""`FormatError`: bytes that are not the structure protocol §2 describes.

A leaf module, so that the COSE layer and every signature algorithm raise the same
error; the QR verifier maps it to `malformed_credential`.
"""

from __future__ import annotations

__all__ = ["FormatError"]


class FormatError(ValueError):
    """The bytes are not the structure protocol §2 describes (→ `malformed_credential`)."""
