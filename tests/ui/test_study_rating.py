"""The participant's rating window (paper §E, §G): rating by key and button, saving at
once, the participant's own order, Back, resuming, blinding, the five views, failed
saves and the `--study` entry point."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QWidget,
)

from samstudio.core.masks import encode_rle
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyItem,
    load_study,
    save_study,
)
from samstudio.core.study.sheets import RatingSheet, participant_order
from samstudio.core.study.views import VIEW_KEYS

# condition names, ids and kinds that must never be shown to a participant
CONDITIONS = [
    Condition("cQx7", "zebranet_v7", "model", "weights/zebranet.pt"),
    Condition("cWy3", "cocoish_truth", "ground-truth", "annotations.json"),
]
SECRETS = ["cQx7", "cWy3", "zebranet", "cocoish", "model", "ground", "truth", "weights"]
H, W = 90, 120


def make_study(folder: Path, title: str = "Kitchen objects, round 2") -> Study:
    """3 items (2 points, 1 box; items 1 and 2 share an image) x 2 conditions."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    items: list[StudyItem] = []
    jobs: list[RatingJob] = []
    for i in range(3):
        name = f"i{min(i, 1):04d}.png"  # items i0001 and i0002 share their image
        if not (images / name).exists():
            rgb = rng.integers(60, 120, (H, W, 3), dtype=np.uint8)
            rgb[20:60, 30:80] = (40, 200, 40)
            Image.fromarray(rgb).save(images / name)
        prompt = {"box": (28.0, 18.0, 82.0, 62.0)} if i == 2 else {"point": (50.0, 40.0)}
        items.append(StudyItem(f"i{i:04d}", f"images/{name}", (H, W), **prompt))  # type: ignore[arg-type]
        for c, cond in enumerate(CONDITIONS):
            mask = np.zeros((H, W), bool)
            mask[20 : 60 - 5 * c, 30 : 80 - 3 * i] = True
            jobs.append(RatingJob("", f"i{i:04d}", cond.id, encode_rle(mask)))
    jobs = [
        RatingJob(f"j{n + 1:04d}", j.item, j.condition, j.mask)
        for n, j in enumerate(jobs[k] for k in rng.permutation(len(jobs)))
    ]
    study = Study(title, list(CONDITIONS), items, jobs, seed=11)
    save_study(study, folder)
    return load_study(folder)


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return make_study(tmp_path / "study")


@pytest.fixture
def open_window(qtbot, dialogs) -> Iterator[Callable]:  # noqa: ANN001
    """Opens RatingWindows (shown, active); qtbot closes and deletes them afterwards."""
    from samstudio.ui.study.rating_window import RatingWindow

    def open_(study: Study, participant: str) -> RatingWindow:
        win = RatingWindow(study, participant)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        activate(qtbot, win)
        return win

    yield open_


def activate(qtbot, win) -> None:  # noqa: ANN001
    """Make `win` the active window (its shortcuts work only then)."""
    if not win.isActiveWindow():
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)


def press(qtbot, win, key: Qt.Key) -> None:  # noqa: ANN001
    """A key press in the window, as a participant types it."""
    activate(qtbot, win)
    qtbot.keyClick(win, key)


def ratings_file(study: Study, participant: str) -> dict:
    path = RatingSheet(study, participant).path
    return json.loads(path.read_text(encoding="utf-8"))


def visible_texts(win: QWidget) -> list[str]:
    """Every text a participant can read in `win`: titles, labels, buttons, tooltips,
    the guidelines, the progress bar."""
    texts = [win.windowTitle()]
    for w in [win, *win.findChildren(QWidget)]:
        texts += [w.windowTitle(), w.toolTip(), w.statusTip(), w.accessibleName()]
        if isinstance(w, (QLabel, QAbstractButton)):
            texts.append(w.text())
        if isinstance(w, QPlainTextEdit):
            texts.append(w.toPlainText())
        if isinstance(w, QProgressBar):
            texts.append(w.text())
    for action in win.actions():
        texts += [action.text(), action.toolTip()]
    return [t for t in texts if t]


# ---------------------------------------------------------------------------- rating
def test_rate_by_key_and_by_click_saves_at_once(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "alice")
    order = participant_order(study, "alice")
    assert win.sheet.order == order
    assert win.current_job() == order[0]
    assert win.panel.progress_label.text() == f"Job 1 of {len(order)}"

    press(qtbot, win, Qt.Key.Key_7)
    assert ratings_file(study, "alice")["ratings"][order[0]]["rating"] == 7
    assert win.current_job() == order[1]

    qtbot.mouseClick(win.panel.buttons[3], Qt.MouseButton.LeftButton)
    assert win.current_job() == order[2]
    press(qtbot, win, Qt.Key.Key_0)  # 0 is 10

    doc = ratings_file(study, "alice")
    assert doc["participant"] == "alice"
    assert doc["order"] == order
    assert {k: v["rating"] for k, v in doc["ratings"].items()} == {
        order[0]: 7,
        order[1]: 3,
        order[2]: 10,
    }
    assert all(0 <= v["seconds"] < 60 for v in doc["ratings"].values())
    assert win.panel.progress_label.text() == f"Job 4 of {len(order)}"
    assert win.panel.progress_bar.value() == 3


def test_each_participant_has_an_order_of_their_own(study, open_window) -> None:  # noqa: ANN001
    alice, bob = open_window(study, "alice"), open_window(study, "bob")
    assert alice.sheet.order == participant_order(study, "alice")
    assert bob.sheet.order == participant_order(study, "bob")
    assert alice.sheet.order != bob.sheet.order
    assert sorted(alice.sheet.order) == sorted(j.id for j in study.jobs)
    assert alice.current_job() == alice.sheet.order[0]
    assert bob.current_job() == bob.sheet.order[0]


def test_back_shows_and_changes_the_previous_rating(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "alice")
    order = win.sheet.order
    assert not win.panel.back_button.isEnabled()  # nothing before the first job
    press(qtbot, win, Qt.Key.Key_4)
    press(qtbot, win, Qt.Key.Key_5)
    assert win.current_job() == order[2]
    assert not any(b.isChecked() for b in win.panel.buttons.values())

    qtbot.mouseClick(win.panel.back_button, Qt.MouseButton.LeftButton)
    assert win.current_job() == order[1]
    assert win.panel.buttons[5].isChecked()  # the old rating, highlighted
    assert sum(b.isChecked() for b in win.panel.buttons.values()) == 1
    assert "5" in win.panel.previous_label.text()
    assert win.panel.progress_label.text() == f"Job 2 of {len(order)}"

    press(qtbot, win, Qt.Key.Key_9)
    assert win.current_job() == order[2]  # on to the first unrated job
    ratings = ratings_file(study, "alice")["ratings"]
    assert ratings[order[1]]["rating"] == 9
    assert ratings[order[0]]["rating"] == 4
    assert len(ratings) == 2
    press(qtbot, win, Qt.Key.Key_Backspace)  # Back by key
    assert win.current_job() == order[1] and win.panel.buttons[9].isChecked()


def test_reopening_resumes_at_the_first_unrated_job(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "alice")
    order = win.sheet.order
    press(qtbot, win, Qt.Key.Key_2)
    press(qtbot, win, Qt.Key.Key_8)
    win.close()

    again = open_window(load_study(study.folder), "alice")
    assert again.sheet.order == order
    assert again.current_job() == order[2]
    assert again.panel.progress_label.text() == f"Job 3 of {len(order)}"
    assert again.panel.progress_bar.value() == 2
    press(qtbot, again, Qt.Key.Key_6)
    ratings = ratings_file(study, "alice")["ratings"]
    assert [ratings[j]["rating"] for j in order[:3]] == [2, 8, 6]


def test_all_rated_shows_thanks_and_back_still_works(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "carol")
    total = len(study.jobs)
    with qtbot.waitSignal(win.finished, timeout=5000):
        for n in range(total):
            press(qtbot, win, getattr(Qt.Key, f"Key_{n % 9 + 1}"))
    assert win.current_job() is None
    assert win.pages.currentWidget() is win.thanks_page
    assert f"all {total} masks rated" in win.thanks_label.text()
    press(qtbot, win, Qt.Key.Key_3)  # nothing left to rate
    assert len(ratings_file(study, "carol")["ratings"]) == total

    win.go_back()  # from the thank-you page: the last job, to change its rating
    assert win.current_job() == win.sheet.order[-1]
    assert win.panel.buttons[total % 9 or 9].isChecked()
    press(qtbot, win, Qt.Key.Key_1)
    assert win.pages.currentWidget() is win.thanks_page
    assert ratings_file(study, "carol")["ratings"][win.sheet.order[-1]]["rating"] == 1

    again = open_window(study, "carol")
    assert again.pages.currentWidget() is again.thanks_page


# -------------------------------------------------------------------- the queue (§E)
def queue_study(folder: Path, broken_job: str | None = None) -> Study:
    """The test study with ratings_per_job 1; `broken_job`'s mask damaged."""
    make_study(folder)
    path = folder / "study.json"
    doc = json.loads(path.read_text())
    doc["ratings_per_job"] = 1
    for job in doc["jobs"]:
        if job["id"] == broken_job:
            job["mask"]["counts"] = "zzzz"
    path.write_text(json.dumps(doc))
    return load_study(folder)


def test_queue_windows_never_show_a_job_the_other_rated(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    study = queue_study(tmp_path / "q")
    everything = {j.id for j in study.jobs}
    alice, bob = open_window(study, "alice"), open_window(study, "bob")
    assert alice.panel.progress_label.text() == "Job 1 of 6"
    press(qtbot, bob, Qt.Key.Key_4)
    press(qtbot, bob, Qt.Key.Key_4)
    bobs = set(bob.sheet.ratings)
    first = alice.current_job()
    shown: list[str] = []
    alice.job_shown.connect(shown.append)
    press(qtbot, alice, Qt.Key.Key_8)  # her first job, even if Bob rated it meanwhile
    left = everything - bobs - {first}
    assert alice.panel.progress_label.text() == f"Job 2 of {1 + len(left)}"
    with qtbot.waitSignal(alice.finished, timeout=5000):
        for _ in range(len(everything)):
            if alice.current_job() is None:
                break
            press(qtbot, alice, Qt.Key.Key_8)
    assert shown and not set(shown) & bobs
    assert set(alice.sheet.ratings) == left | {first}
    assert alice.pages.currentWidget() is alice.thanks_page
    text = alice.thanks_label.text()
    assert "no masks left to rate" in text and f"You rated {len(left) + 1} masks" in text
    assert f"all {len(everything)}" not in text

    # Bob's job was taken meanwhile: his rating counts (a harmless duplicate), then thanks
    taken = bob.current_job()
    assert taken in alice.sheet.ratings
    press(qtbot, bob, Qt.Key.Key_2)
    assert bob.sheet.rating_of(taken) == 2
    assert bob.pages.currentWidget() is bob.thanks_page
    assert "You rated 3 masks" in bob.thanks_label.text()
    late = open_window(study, "carl")  # nothing left for a newcomer
    assert late.pages.currentWidget() is late.thanks_page
    assert "You rated 0 masks" in late.thanks_label.text()
    late.go_back()  # nothing of his to go back to
    assert late.pages.currentWidget() is late.thanks_page


def test_queue_back_goes_to_the_participants_own_jobs(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    order = participant_order(make_study(tmp_path / "plain"), "alice")  # same jobs and seed
    study = queue_study(tmp_path / "q", broken_job=order[0])
    win = open_window(study, "alice")
    assert win.sheet.order == order
    assert win.current_job() == order[0] and win.panel.skip_button.isVisible()
    qtbot.mouseClick(win.panel.skip_button, Qt.MouseButton.LeftButton)
    assert win.current_job() == order[1]
    assert not win.panel.back_button.isEnabled()  # nothing rated yet
    RatingSheet(study, "bob").rate(order[2], 3)  # behind her back
    press(qtbot, win, Qt.Key.Key_5)
    assert win.sheet.order[:2] == [order[1], order[0]]  # rated first, then her queue
    assert win.current_job() == order[3]  # order[2] is Bob's now
    assert win.panel.progress_label.text() == "Job 3 of 5"

    press(qtbot, win, Qt.Key.Key_Backspace)
    assert win.current_job() == order[1] and win.panel.buttons[5].isChecked()
    assert not win.panel.back_button.isEnabled()
    win.go_back()
    assert win.current_job() == order[1]
    press(qtbot, win, Qt.Key.Key_6)  # changed; on to her next job
    assert win.sheet.rating_of(order[1]) == 6 and win.current_job() == order[3]
    win.go_back()
    assert win.current_job() == order[1]  # not the damaged job she could not rate


def test_queue_window_reports_an_unreadable_ratings_file_of_another(
    qtbot,
    tmp_path,
    open_window,  # noqa: ANN001
) -> None:
    study = queue_study(tmp_path / "q")
    broken = study.folder / "ratings" / "someone-00000000.json"
    broken.write_text("{", encoding="utf-8")
    win = open_window(study, "alice")
    assert win.current_job() == win.sheet.order[0] and win.sheet.total == 6
    assert broken.name in win.statusBar().currentMessage()
    press(qtbot, win, Qt.Key.Key_7)
    assert win.sheet.done == 1
    broken.unlink()
    press(qtbot, win, Qt.Key.Key_7)
    assert win.statusBar().currentMessage() == ""


# --------------------------------------------------------------------------- blinding
def test_nothing_shown_names_a_condition(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "dave")
    seen: list[str] = []
    for _ in range(len(study.jobs)):
        win.panel.show_guidelines(True)
        seen += visible_texts(win)
        press(qtbot, win, Qt.Key.Key_5)
    seen += visible_texts(win)  # the thank-you page
    assert any("Job 6 of 6" in t for t in seen)  # the texts were collected
    assert any("no visible errors" in t for t in seen)
    for text in seen:
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), (secret, text)


def test_a_title_naming_a_condition_is_not_shown(tmp_path, qtbot, open_window) -> None:  # noqa: ANN001
    study = make_study(tmp_path / "s", title="ZebraNet_v7 vs cocoish_truth")
    win = open_window(study, "erin")
    texts = visible_texts(win)
    assert not any("zebranet" in t.lower() or "cocoish" in t.lower() for t in texts)
    assert "Mask quality study" in win.windowTitle()
    assert "erin" in win.windowTitle()


# ----------------------------------------------------------------------------- views
def test_five_views_hover_and_full_size(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "frank")
    views = win.views
    job = study.job(win.current_job())
    assert set(views.thumbs) == set(VIEW_KEYS)
    for key in VIEW_KEYS:
        thumb = views.thumbs[key]
        assert not thumb.full_pixmap().isNull(), key
        assert not thumb.pixmap().isNull(), key  # drawn on screen
        assert thumb.isVisible()
    top = views.thumbs["image"].full_pixmap()
    assert (top.height(), top.width()) == (H, W)
    assert views.captions["mask"].text() == "3. Mask only (yellow on purple)"

    # the mask-only view: yellow where the job's mask is, purple elsewhere
    img = views.thumbs["mask"].full_pixmap().toImage()
    mask = job.decode()
    ys, xs = np.nonzero(mask)
    inside = img.pixelColor(int(xs[len(xs) // 3]), int(ys[len(ys) // 3]))
    assert (inside.red(), inside.green(), inside.blue()) == (253, 231, 37)
    outside = img.pixelColor(2, 2)
    assert (outside.red(), outside.green(), outside.blue()) == (68, 1, 84)

    # hovering a thumbnail shows it in the large preview
    thumb = views.thumbs["zoom_overlay"]
    enter = QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(thumb.mapToGlobal(QPointF(5, 5))))
    QApplication.sendEvent(thumb, enter)
    assert views.current == "zoom_overlay"
    assert views.preview.full_pixmap().cacheKey() == thumb.full_pixmap().cacheKey()
    assert views.preview.width() > thumb.width()

    # a click: full size (the rating panel and thumbnails make room); again: back
    qtbot.mouseClick(views.thumbs["mask"], Qt.MouseButton.LeftButton)
    assert views.full_size and views.current == "mask"
    assert not win.panel.isVisible() and not views.thumb_area.isVisible()
    press(qtbot, win, Qt.Key.Key_Right)  # arrows cycle the views
    assert views.current == "zoom_image"
    qtbot.mouseClick(views.preview, Qt.MouseButton.LeftButton)
    assert not views.full_size
    assert win.panel.isVisible() and views.thumb_area.isVisible()


def test_items_sharing_an_image_decode_it_once(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "gina")
    for _ in range(len(study.jobs)):
        press(qtbot, win, Qt.Key.Key_7)
    assert win.pictures.decoded == 2  # 3 items, 2 image files, each read once


def test_a_missing_image_is_reported_and_cannot_be_rated(qtbot, study, open_window) -> None:  # noqa: ANN001
    for path in (study.folder / "images").glob("*.png"):
        path.unlink()
    win = open_window(study, "hank")
    assert win.views.message.isVisible()
    assert "i000" in win.views.message.text()  # names the file
    assert not win.panel.buttons[5].isEnabled()
    press(qtbot, win, Qt.Key.Key_5)
    assert win.sheet.done == 0
    assert not win.sheet.path.exists()


def rate_all_that_can_be_shown(qtbot, win) -> list[str]:  # noqa: ANN001
    """Rate 7 every job that can be shown, skipping those that cannot; the jobs skipped."""
    skipped: list[str] = []
    for _ in range(3 * len(win.sheet.order)):
        job = win.current_job()
        if job is None or job in skipped:
            break
        if win.panel.buttons[7].isEnabled():
            press(qtbot, win, Qt.Key.Key_7)
        else:
            assert win.panel.skip_button.isVisible()
            skipped.append(job)
            qtbot.mouseClick(win.panel.skip_button, Qt.MouseButton.LeftButton)
    return skipped


def test_a_missing_image_does_not_hold_up_the_other_jobs(qtbot, study, open_window) -> None:  # noqa: ANN001
    (study.folder / "images" / "i0000.png").unlink()  # item i0000's image: 2 of 6 jobs
    win = open_window(study, "hank2")
    skipped = rate_all_that_can_be_shown(qtbot, win)
    assert sorted(skipped) == sorted(j.id for j in study.jobs if j.item == "i0000")
    assert win.sheet.done == len(study.jobs) - 2
    assert win.current_job() in skipped  # still unrated, shown again with its message
    assert win.views.message.isVisible() and not win.panel.buttons[7].isEnabled()


def test_skip_is_offered_only_for_a_job_that_cannot_be_shown(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "hank3")
    first = win.current_job()
    assert not win.panel.skip_button.isVisible()
    win.skip()
    assert win.current_job() == first


def test_a_damaged_mask_in_study_json_is_reported_not_a_crash(qtbot, study, open_window) -> None:  # noqa: ANN001
    path = study.folder / "study.json"
    doc = json.loads(path.read_text())
    bad = doc["jobs"][0]["id"]
    doc["jobs"][0]["mask"]["counts"] = "zzzz"  # not COCO's RLE alphabet
    path.write_text(json.dumps(doc))
    study = load_study(study.folder)
    win = open_window(study, "hank4")
    assert rate_all_that_can_be_shown(qtbot, win) == [bad]
    assert win.sheet.done == len(study.jobs) - 1
    assert str(path) in win.views.message.text() and "malformed" in win.views.message.text()


def test_the_keypad_digits_rate_too(qtbot, study, open_window) -> None:  # noqa: ANN001
    win = open_window(study, "kim")
    first, second = win.sheet.order[:2]
    qtbot.keyClick(win, Qt.Key.Key_8, Qt.KeyboardModifier.KeypadModifier)
    qtbot.keyClick(win, Qt.Key.Key_0, Qt.KeyboardModifier.KeypadModifier)
    assert win.sheet.rating_of(first) == 8
    assert win.sheet.rating_of(second) == 10


# ----------------------------------------------------------------------- save errors
def test_a_failed_save_is_reported_and_the_job_stays_unrated(
    qtbot,
    study,
    open_window,
    dialogs,
    monkeypatch,  # noqa: ANN001
) -> None:
    win = open_window(study, "ivan")
    first = win.current_job()

    def refuse(self) -> None:  # noqa: ANN001
        raise OSError(28, "No space left on device", str(self.path))

    monkeypatch.setattr(RatingSheet, "_save", refuse)
    press(qtbot, win, Qt.Key.Key_6)
    assert len(dialogs) == 1
    title, text = dialogs[0]
    assert str(win.sheet.path) in text and "No space left" in text
    assert win.isVisible()
    assert win.current_job() == first
    assert win.sheet.rating_of(first) is None
    assert not win.sheet.path.exists()
    assert not any(b.isChecked() for b in win.panel.buttons.values())

    monkeypatch.undo()
    qtbot.mouseClick(win.panel.buttons[6], Qt.MouseButton.LeftButton)
    assert ratings_file(study, "ivan")["ratings"][first]["rating"] == 6
    assert win.current_job() == win.sheet.order[1]


# ------------------------------------------------------------------ entry points
def test_participant_dialog_needs_a_name(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QDialogButtonBox

    from samstudio.ui.study.start_dialog import ParticipantDialog

    dialog = ParticipantDialog("A study")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.name_edit.setText("   ")
    assert not ok.isEnabled()
    dialog.name_edit.setText("  P-17 ")
    assert ok.isEnabled()
    assert dialog.participant() == "P-17"


def test_main_with_a_bad_study_folder_exits_1(
    tmp_path, qtbot, dialogs, capsys, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.ui.app import main
    from samstudio.ui.study import launch

    missing = tmp_path / "no_such_study"
    assert main(["main.py", "--study", str(missing), "--participant", "x"]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert dialogs == []  # offscreen: no screen, so no dialog that nobody could close
    monkeypatch.setattr(launch, "has_screen", lambda: True)  # as with a real display
    assert main(["main.py", "--study", str(missing), "--participant", "x"]) == 1
    assert str(missing) in capsys.readouterr().err
    assert dialogs and str(missing) in dialogs[-1][1]

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "study.json").write_text('{"format": "samstudio-study", "items": [', "utf-8")
    assert main(["main.py", f"--study={broken}"]) == 1
    assert str(broken / "study.json") in capsys.readouterr().err

    assert main(["main.py", "--study"]) == 2  # no folder given
    assert "usage" in capsys.readouterr().err


def test_study_menu_opens_a_rating_window(window, study, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    from samstudio.ui.study import launch
    from samstudio.ui.study.rating_window import RatingWindow

    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(study.folder))
    )
    monkeypatch.setattr(launch, "ask_participant", lambda title, parent=None: "jane")
    action = next(a for a in window.study_menu.actions() if a.text() == "Rate a study…")
    action.trigger()
    rating = window.findChildren(RatingWindow)
    assert len(rating) == 1
    rater = rating[0]
    try:
        assert rater.isWindow() and rater.isVisible()
        assert rater.sheet.participant == "jane"
        qtbot.mouseClick(rater.panel.buttons[8], Qt.MouseButton.LeftButton)
        assert ratings_file(study, "jane")["ratings"][rater.sheet.order[0]]["rating"] == 8
    finally:
        rater.close()
