"""Invisible characters: Unicode's default-ignorable code points, bidi controls included.

They render as nothing, so they can hide inside a value (`jane@exa\\u00admple.com`) or
reorder what a reader sees (U+202E) without changing what a person reads. They are
removed, not replaced by a space, so a value they were put into stays whole for
redaction. The table is Default_Ignorable_Code_Point from Unicode's
DerivedCoreProperties.txt, which covers every bidi control (U+061C, U+200E-F,
U+202A-E, U+2066-9), joiners, variation selectors, soft hyphen and tag characters.
"""
from __future__ import annotations

import re
from typing import Tuple

_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
DEFAULT_IGNORABLE = frozenset(c for lo, hi in _RANGES for c in range(lo, hi + 1))
_INVISIBLE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _RANGES) + "]+")


def strip_invisible(text: str) -> Tuple[str, int]:
  """`text` without default-ignorable code points, and how many were removed."""
  removed = 0

  def count(m: re.Match) -> str:
    nonlocal removed
    removed += len(m.group())
    return ""

  return _INVISIBLE.sub(count, text), removed
