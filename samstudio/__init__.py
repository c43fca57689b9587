"""SAM Studio: segmenting images with Segment Anything on the desktop."""

__version__ = "0.1.0"
