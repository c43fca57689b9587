"""Errors that the inference layer raises, with messages a user can act on."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error raised by `samstudio.inference`."""


class ModelLoadError(InferenceError):
    """A model file could not be loaded. The message names the file and the problem."""


class PromptError(InferenceError, ValueError):
    """The prompts given to `decode` are malformed (shapes, labels, coordinates)."""


class DownloadError(InferenceError):
    """A download failed, was cancelled, or did not match its checksum."""
