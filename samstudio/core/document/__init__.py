"""The annotation document: a project (folder of images + SQLite project file) and its edits.

Public API: `Project` (create/open, images, categories, annotations, edits with undo and
redo per image), the records it returns (`ImageRecord`, `Category`, `Annotation`) and the
errors (`ProjectError` and its subclasses), all re-exported here.
"""

from samstudio.core.document.project import PROJECT_FILE_NAME, Project
from samstudio.core.document.records import (
    IMAGE_STATUSES,
    SOURCES,
    Annotation,
    Category,
    ImageRecord,
)
from samstudio.core.document.rows import EditError, EncodedMask
from samstudio.core.store import (
    CorruptProjectError,
    ProjectError,
    ProjectFullError,
    ProjectLockedError,
    ProjectVersionError,
    ReadOnlyProjectError,
)

__all__ = [
    "IMAGE_STATUSES",
    "PROJECT_FILE_NAME",
    "SOURCES",
    "Annotation",
    "Category",
    "CorruptProjectError",
    "EditError",
    "EncodedMask",
    "ImageRecord",
    "Project",
    "ProjectError",
    "ProjectFullError",
    "ProjectLockedError",
    "ProjectVersionError",
    "ReadOnlyProjectError",
]
