"""Errors of the data layer (their own module so that sources, decode and download share them)."""

from __future__ import annotations


class ImageLoadError(ValueError):
    """An image that could not be read: the message names the file or URL and the reason."""

    def __init__(self, uri: str, reason: str):
        super().__init__(f"{uri}: {reason}")
        self.uri = str(uri)
        self.reason = reason

    def __reduce__(self):  # keep the two-argument signature through copy/multiprocessing
        return (type(self), (self.uri, self.reason))


class DecodeError(ImageLoadError):
    """Bytes that are not a usable image: empty, truncated, corrupt, not an image, or too large."""


class OfflineError(RuntimeError):
    """A download was needed while offline (``ONECLASS_OFFLINE=1`` or ``offline=True``)."""


class DataNotFoundError(FileNotFoundError):
    """The data root, or a data set's files, could not be found."""


class ManifestError(ValueError):
    """A dataset manifest that is missing or malformed."""
