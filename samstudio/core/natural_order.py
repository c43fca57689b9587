"""Natural order of image paths, as labelme and CVAT list a folder.

`img_2.png` comes before `img_10.png`, and `Beach.png` next to `beach_2.png`: each path
component (split on "/") is compared case-insensitively, runs of ASCII digits as
numbers. Paths that this leaves equal (`img7` and `img007`, `A.png` and `a.png`) are
ordered by their raw text, so the order is total and the same on every run.
"""

from __future__ import annotations

import re
from functools import lru_cache

_DIGITS = re.compile(r"[0-9]+")
# Below every character of a name: "\x00" ends a component (so "a/z" < "a_b", the
# folder "a" before the name "a_b"), "\x01" starts a number (so "img10" < "img_1", as
# the text "img" is shorter than "img_").
_END, _NUMBER = "\x00", "\x01"


def _number(match: re.Match[str]) -> str:
    """A digit run as text that compares as its value: its length first, then the
    digits (leading zeros dropped)."""
    digits = match.group().lstrip("0")
    return f"{_NUMBER}{chr(32 + len(digits))}{digits}"


@lru_cache(maxsize=1 << 16)  # the images of a project are listed again and again
def natural_key(path: str) -> tuple[str, str]:
    """Sort key of a POSIX relative path ("a/img_10.png") in natural order: (the path
    with each component case-folded and its numbers made comparable, the path)."""
    folded = _END.join(_DIGITS.sub(_number, part.casefold()) for part in path.split("/"))
    return folded, path
