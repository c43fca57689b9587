"""The installed Qt binding keeps Python's reference counts right.

PySide6 6.12.0's abi3 wheels return None from void methods and True from
`Signal.emit` without a new reference; under Python < 3.12 (where None and True are
not immortal) every such call drops one reference, and after a few hundred signal
emits the interpreter aborts ("deallocating None"). pyproject.toml excludes that
build; this test fails if such a build is installed again.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    text = Signal(str)
    value = Signal(object)


def test_void_calls_and_emits_keep_refcounts(qtbot) -> None:  # noqa: ANN001
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    emitter.text.connect(label.setText)
    seen: list[object] = []
    emitter.value.connect(seen.append)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(200):
        label.setText(str(i))  # a void method
        emitter.text.emit("x")  # emit returns a bool
        emitter.value.emit(None)
    del seen[:]
    # Allow a little drift from unrelated objects; the bug costs 400+ here.
    assert sys.getrefcount(None) >= none_before - 20
    assert sys.getrefcount(True) >= true_before - 20
