"""Reviewing auto-segment proposals from the keyboard, as an annotator does it: J / K
through the proposals (best predicted IoU first), Ctrl+Return / Ctrl+Backspace accept /
reject and go on, the status line, "Accept proposals above…" in one undo step, the view
following the proposal when zoomed in, and no review key firing while typing."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from samstudio.core.amg import MaskRecord
from samstudio.core.masks import encode_rle, rle_area_bbox
from ui.conftest import open_folder
from ui.helpers import key

CTRL = Qt.KeyboardModifier.ControlModifier
SHAPE = (240, 320)  # (H, W) of conftest's scenes

# name: (x, y, w, h, predicted IoU, stability); XYWH image pixels
SPECS = {
    "A": (10, 10, 20, 20, 0.80, 0.97),
    "B": (200, 150, 30, 30, 0.95, 0.90),
    "C": (100, 50, 25, 25, 0.95, 0.99),
    "D": (250, 20, 20, 20, 0.70, 0.96),
    "E": (40, 180, 30, 20, 0.91, 0.97),
    "F": (236, 186, 12, 12, 0.95, 0.90),  # B's scores: reading order puts B (higher) first
    "G": (5, 5, 300, 220, 0.50, 0.99),
}
ORDER = ["C", "B", "F", "E", "A", "D", "G"]


def rect_record(x: int, y: int, w: int, h: int, iou: float, stability: float) -> MaskRecord:
    mask = np.zeros(SHAPE, bool)
    mask[y : y + h, x : x + w] = True
    rle = encode_rle(mask)
    area, bbox = rle_area_bbox(rle)
    point = ((x + w / 2, y + h / 2),)
    return MaskRecord(rle, tuple(bbox), area, iou, stability, point, (0, 0, SHAPE[1], SHAPE[0]))


def add(qtbot, win, names: list[str], image_id: int | None = None) -> dict[str, int]:  # noqa: ANN001
    """Add the proposals `names` of SPECS to `image_id` (default: the one on screen) as
    an auto-segment run does; returns name -> annotation id."""
    auto = win.autosegment_menu.auto
    image_id = win.annotator.image_id if image_id is None else image_id
    with qtbot.waitSignal(auto.proposals_added, timeout=5000):
        auto.add_proposals(image_id, [rect_record(*SPECS[n]) for n in names])
    by_corner = {tuple(a.bbox[:2]): a.id for a in win.project.annotations(image_id)}
    return {n: by_corner[SPECS[n][:2]] for n in names}


def source(win, ann_id: int) -> str | None:  # noqa: ANN001
    anns = {a.id: a for a in win.project.annotations(win.annotator.image_id)}
    return anns[ann_id].source if ann_id in anns else None


def indicator(win) -> str:  # noqa: ANN001
    label = win.autosegment_menu.review.indicator
    return label.text() if label.isVisible() else ""


def message(win) -> str:  # noqa: ANN001
    return win.statusBar().currentMessage()


@pytest.fixture
def reviewing(qtbot, window, image_folder):  # noqa: ANN001,ANN201
    """The window on its first image with the seven proposals of SPECS."""
    open_folder(qtbot, window, image_folder)
    ids = add(qtbot, window, list(SPECS))
    return window, ids


def test_order_best_first_and_j_k_step_wrapping(qtbot, reviewing) -> None:  # noqa: ANN001
    from samstudio.ui.proposal_review import review_order

    win, ids = reviewing
    records = win.autosegment_menu.auto.proposals()
    assert [r.id for r in review_order(records)] == [ids[n] for n in ORDER]
    assert indicator(win) == "7 proposals to review (J: next)"

    seen = []
    for _ in range(len(ORDER)):
        key(qtbot, win, Qt.Key.Key_J)
        seen.append(win.annotator.selected)
    assert seen == [ids[n] for n in ORDER]
    key(qtbot, win, Qt.Key.Key_J)  # past the last: back to the first
    assert win.annotator.selected == ids["C"]
    assert indicator(win) == "proposal 1 of 7 (predicted IoU 0.95, stability 0.99)"
    key(qtbot, win, Qt.Key.Key_K)  # before the first: the last
    assert win.annotator.selected == ids["G"]
    key(qtbot, win, Qt.Key.Key_K)
    assert win.annotator.selected == ids["D"]
    assert indicator(win) == "proposal 6 of 7 (predicted IoU 0.70, stability 0.96)"
    # selected, framed, and the current row of the Instances panel
    assert win.canvas.focus_box() == SPECS["D"][:4]
    item = win.instances_panel.list.currentItem()
    assert int(item.data(Qt.ItemDataRole.UserRole)) == ids["D"]

    # a proposal picked in the Instances panel (or with Ctrl+click) is the cursor too
    win.instances_panel.select(ids["E"])
    qtbot.waitUntil(lambda: indicator(win).startswith("proposal 4 of 7"), timeout=2000)
    key(qtbot, win, Qt.Key.Key_J)
    assert win.annotator.selected == ids["A"]
    # an accepted instance selected is no proposal: J starts from the best one
    win.instances_panel.select(None)
    qtbot.waitUntil(lambda: win.canvas.focus_box() is None, timeout=2000)
    key(qtbot, win, Qt.Key.Key_J)
    assert win.annotator.selected == ids["C"]


def test_accept_and_reject_go_on_to_the_next_each_one_undo_step(qtbot, reviewing) -> None:  # noqa: ANN001
    win, ids = reviewing
    stack = win.annotator.history.stack(win.annotator.image_id)
    steps = stack.count()
    key(qtbot, win, Qt.Key.Key_J)  # C
    key(qtbot, win, Qt.Key.Key_Return, CTRL)
    assert source(win, ids["C"]) == "auto"
    assert win.annotator.selected == ids["B"]
    assert indicator(win) == "proposal 1 of 6 (predicted IoU 0.95, stability 0.90)"
    key(qtbot, win, Qt.Key.Key_Backspace, CTRL)
    assert source(win, ids["B"]) is None
    assert win.annotator.selected == ids["F"]
    assert indicator(win).startswith("proposal 1 of 5")
    assert stack.count() == steps + 2

    # from the middle: the next one, and after the last the ones skipped at the top
    key(qtbot, win, Qt.Key.Key_K)  # G, the last
    key(qtbot, win, Qt.Key.Key_Backspace, CTRL)
    assert source(win, ids["G"]) is None and win.annotator.selected == ids["F"]

    # Undo brings each one back under the cursor, to be decided again
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # G back
    assert source(win, ids["G"]) == "proposal" and win.annotator.selected == ids["G"]
    assert indicator(win) == "proposal 5 of 5 (predicted IoU 0.50, stability 0.99)"
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # B back
    assert source(win, ids["B"]) == "proposal" and win.annotator.selected == ids["B"]
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # C a proposal again
    assert source(win, ids["C"]) == "proposal" and win.annotator.selected == ids["C"]
    assert stack.count() == steps + 3 and stack.index() == steps
    assert indicator(win) == "proposal 1 of 7 (predicted IoU 0.95, stability 0.99)"
    assert win.canvas.focus_box() == SPECS["C"][:4]
    # Redo decides it again and the cursor goes on, as the key did
    key(qtbot, win, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert source(win, ids["C"]) == "auto" and win.annotator.selected == ids["B"]
    assert indicator(win) == "proposal 1 of 6 (predicted IoU 0.95, stability 0.90)"


def test_delete_rejects_the_proposal_under_the_cursor_and_goes_on(qtbot, reviewing) -> None:  # noqa: ANN001
    win, ids = reviewing
    key(qtbot, win, Qt.Key.Key_J)  # C
    key(qtbot, win, Qt.Key.Key_Delete)
    assert source(win, ids["C"]) is None and win.annotator.selected == ids["B"]
    assert win.annotator.undo_text() == "Reject proposal"
    # Delete in the Instances panel on the proposal under the cursor: the same
    win.instances_panel.list.setFocus()
    qtbot.keyClick(win.instances_panel.list, Qt.Key.Key_Delete)
    assert source(win, ids["B"]) is None and win.annotator.selected == ids["F"]
    # an accepted instance selected: Delete deletes it, as before
    key(qtbot, win, Qt.Key.Key_Return, CTRL)  # F accepted, the cursor on E
    win.annotator.select_instance(ids["F"])
    key(qtbot, win, Qt.Key.Key_Delete)
    assert source(win, ids["F"]) is None and win.annotator.undo_text() == "Delete mask"


def test_last_one_says_reviewed_and_j_opens_the_next_image_with_proposals(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    images = [r.id for r in window.project.images()]
    name = [window.project.image_path(i).name for i in images]
    first = add(qtbot, window, ["A"])
    third = add(qtbot, window, ["C", "E"], image_id=images[2])

    key(qtbot, window, Qt.Key.Key_J)
    key(qtbot, window, Qt.Key.Key_Return, CTRL)
    assert source(window, first["A"]) == "auto"
    assert message(window) == (
        f"All proposals on {name[0]} reviewed. J: next image with proposals "
        f"({name[2]}, 2) · N: next image"
    )
    assert window.annotator.selected is None  # the accepted one is left alone
    assert indicator(window) == "" and window.canvas.focus_box() is None

    with qtbot.waitSignal(window.annotator.image_opened, timeout=10000):
        key(qtbot, window, Qt.Key.Key_J)  # the image without proposals is skipped
    assert window.annotator.image_id == images[2]
    assert window.annotator.selected == third["C"]
    assert indicator(window) == "proposal 1 of 2 (predicted IoU 0.95, stability 0.99)"
    key(qtbot, window, Qt.Key.Key_Backspace, CTRL)
    key(qtbot, window, Qt.Key.Key_Backspace, CTRL)
    assert window.autosegment_menu.auto.proposals() == []
    assert message(window) == f"All proposals on {name[2]} reviewed; no other image has proposals."
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert source(window, third["E"]) == "proposal" and window.annotator.selected == third["E"]
    assert indicator(window) == "proposal 1 of 1 (predicted IoU 0.91, stability 0.97)"


def test_an_image_without_proposals(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    key(qtbot, window, Qt.Key.Key_J)
    assert message(window) == "No proposals to review, on this image or any other."
    assert window.annotator.image_id == image_id and window.annotator.selected is None
    key(qtbot, window, Qt.Key.Key_Return, CTRL)
    assert message(window) == "This image has no proposals to review."
    assert indicator(window) == "" and not window.annotator.history.can_undo()
    window.autosegment_menu.accept_above_action.trigger()  # no dialog, the same line
    assert message(window) == "This image has no proposals to review."
    # with proposals but none selected, Ctrl+Return says how to pick one
    ids = add(qtbot, window, ["A"])
    key(qtbot, window, Qt.Key.Key_Return, CTRL)
    assert message(window).startswith("No proposal selected: J goes to the next one")
    assert source(window, ids["A"]) == "proposal"


def test_accept_above_thresholds_in_one_undo_step(qtbot, reviewing, monkeypatch) -> None:  # noqa: ANN001
    from samstudio.ui.proposal_accept_dialog import AcceptAboveDialog

    win, ids = reviewing
    counts = []

    def exec_(self) -> int:  # noqa: ANN001
        counts.append(self.count_label.text())
        self.iou.setValue(0.90)
        self.stability.setValue(0.95)
        counts.append(self.count_label.text())
        self.accept()
        return self.result()

    monkeypatch.setattr(AcceptAboveDialog, "exec", exec_)
    stack = win.annotator.history.stack(win.annotator.image_id)
    steps = stack.count()
    win.autosegment_menu.accept_above_action.trigger()
    assert counts[-1] == "2 of 7 proposals of this image pass"
    accepted = {n for n in SPECS if source(win, ids[n]) == "auto"}
    assert accepted == {"C", "E"}  # B and F: stability 0.90; A, D, G: IoU below 0.90
    assert stack.count() == steps + 1
    assert win.annotator.undo_text() == "Accept 2 proposals (IoU ≥ 0.90, stability ≥ 0.95)"
    assert win.annotator.selected == ids["B"]  # the best one left
    assert indicator(win) == "proposal 1 of 5 (predicted IoU 0.95, stability 0.90)"

    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # one undo brings all back
    assert {source(win, ids[n]) for n in SPECS} == {"proposal"}
    # the dialog opens with the last thresholds; a score stored as float32 (0.95 reads
    # back 0.9499999) reaches a threshold of 0.95
    dialog = AcceptAboveDialog(win.autosegment_menu.auto.proposals(), 0.95, 0.95)
    qtbot.addWidget(dialog)
    assert [r.id for r in dialog.passing()] == [ids["C"]]
    assert win.autosegment_menu.review.accept_above(0.99, 0.99) == 0
    assert message(win) == "No proposal reaches predicted IoU 0.99 and stability 0.99."
    assert stack.count() == steps + 1


def test_view_follows_the_proposal_only_when_it_is_off_screen(qtbot, reviewing) -> None:  # noqa: ANN001
    win, ids = reviewing
    canvas = win.canvas
    qtbot.waitUntil(lambda: canvas.image_size is not None, timeout=5000)
    canvas.fit()
    before = canvas.visible_rect()
    key(qtbot, win, Qt.Key.Key_J)  # C, on screen: the view stays
    assert canvas.visible_rect() == before

    canvas.zoom_by(4)
    canvas.centerOn(0, 0)  # zoomed in on the top left corner
    zoom = canvas.zoom

    def shows(name: str) -> bool:
        x, y, w, h = SPECS[name][:4]
        r = canvas.visible_rect()
        return r.left() <= x and r.top() <= y and x + w <= r.right() and y + h <= r.bottom()

    assert not shows("B")
    key(qtbot, win, Qt.Key.Key_J)  # B, bottom right: brought into view at the same zoom
    assert shows("B") and canvas.zoom == zoom
    assert shows("F")
    here = canvas.visible_rect()
    key(qtbot, win, Qt.Key.Key_J)  # F, already on screen: nothing moves
    assert win.annotator.selected == ids["F"] and canvas.visible_rect() == here
    for _ in range(3):  # B, C, then G (wrapping): G is bigger than the view at this zoom
        key(qtbot, win, Qt.Key.Key_K)
    assert win.annotator.selected == ids["G"]
    assert shows("G") and canvas.zoom < zoom


def test_review_keys_do_nothing_while_typing(qtbot, reviewing) -> None:  # noqa: ANN001
    win, ids = reviewing
    key(qtbot, win, Qt.Key.Key_J)
    assert win.annotator.selected == ids["C"]
    edit = QLineEdit()  # a text field in the window, such as a search or a note field
    win.statusBar().addWidget(edit)
    edit.show()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    for k in (Qt.Key.Key_J, Qt.Key.Key_K, Qt.Key.Key_J):
        qtbot.keyClick(edit, k)
    assert edit.text() == "jkj"
    qtbot.keyClick(edit, Qt.Key.Key_Return, CTRL)
    qtbot.keyClick(edit, Qt.Key.Key_Backspace, CTRL)
    assert win.annotator.selected == ids["C"] and source(win, ids["C"]) == "proposal"
    assert {source(win, i) for i in ids.values()} == {"proposal"}
    # the canvas focused again: the keys work
    key(qtbot, win, Qt.Key.Key_Return, CTRL)
    assert source(win, ids["C"]) == "auto" and win.annotator.selected == ids["B"]
