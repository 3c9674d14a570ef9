"""Whose folder is it? The checks every command that writes makes first.

A command of this package writes only into a folder that is new, empty, or
its own: a MaPhC2F dataset (recognised by its manifest, or by the lock file
of an unfinished first build) for ``maphc2f-build`` and ``maphc2f splits``,
an earlier export (recognised by :data:`EXPORT_MARKER`) for ``maphc2f
export``. Anything else is refused with one line naming a few of the files
found there, so nothing of the user's is ever overwritten. A ``data/``
sub-folder alone does not make a dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from maphc2f_data.dataset.config import DATASET_NAME, MANIFEST_NAME
from maphc2f_data.dataset.lock import lock_path
from maphc2f_data.errors import UserError

#: Provenance file of an export folder: marks it as written by ``maphc2f export``.
EXPORT_MARKER = "maphc2f_export.json"
#: Files named in a refusal.
LISTED_FILES = 4


def _json_object(path: Path) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def has_own_manifest(path: os.PathLike) -> bool:
    """Whether ``path/manifest.json`` is a MaPhC2F manifest (its name and a format version)."""
    manifest = _json_object(Path(path) / MANIFEST_NAME)
    return (manifest is not None and manifest.get("name") == DATASET_NAME
            and isinstance(manifest.get("format_version"), int))


def is_dataset_dir(path: os.PathLike) -> bool:
    """Whether ``path`` is a MaPhC2F dataset, finished (its manifest) or an
    unfinished first build (the build's lock file, no manifest yet)."""
    path = Path(path)
    return has_own_manifest(path) or (not (path / MANIFEST_NAME).exists() and lock_path(path).is_file())


def sample_files(folder: Path, limit: int = LISTED_FILES) -> List[str]:
    """Up to ``limit`` files under ``folder`` (relative POSIX paths, top level first)."""
    found: List[str] = []
    for current, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            found.append(Path(current, name).relative_to(folder).as_posix())
        if len(found) >= limit:
            break
    found.sort(key=lambda rel: (rel.count("/"), rel))
    return found[:limit]


def _refusal(folder: Path, option: str, what: str, expected: str) -> UserError:
    files = sample_files(folder, LISTED_FILES + 1)
    shown = ", ".join(files[:LISTED_FILES]) + (", ..." if len(files) > LISTED_FILES else "")
    return UserError(f"{option} {folder} holds files {what} did not write ({shown or 'empty folders'}) "
                     f"and is not {expected}; choose a new or empty folder")


def check_dataset_output(out: os.PathLike, what: str = "maphc2f-build", option: str = "--out") -> None:
    """Refuse ``out`` unless it is new, an empty folder or a MaPhC2F dataset.

    Raises
    ------
    UserError
        ``out`` is a file, or a non-empty folder that is not a dataset.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_dataset_dir(out):
        raise _refusal(out, option, what, "a maphc2f dataset (no maphc2f manifest.json)")


def require_dataset(root: os.PathLike) -> None:
    """Refuse ``root`` unless it is a built MaPhC2F dataset (its own manifest).

    Raises
    ------
    UserError
    """
    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        raise UserError(f"not a built MaPhC2F dataset (no {MANIFEST_NAME}): {root}")
    if not has_own_manifest(root):
        raise UserError(f"not a built MaPhC2F dataset ({MANIFEST_NAME} is not a maphc2f manifest): {root}")


def is_export_dir(path: os.PathLike) -> bool:
    """Whether ``path`` holds an export of ``maphc2f export`` (its marker file)."""
    marker = _json_object(Path(path) / EXPORT_MARKER)
    return marker is not None and marker.get("made_by") == "maphc2f export"


def check_export_output(dest: os.PathLike) -> None:
    """Refuse ``dest`` unless it is new, an empty folder or an earlier export.

    Raises
    ------
    UserError
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"--out {dest} is a file, not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not is_export_dir(dest):
        raise _refusal(dest, "--out", "maphc2f export", f"an earlier export (no {EXPORT_MARKER})")


def make_output_dir(path: os.PathLike, option: str = "--out") -> Path:
    """Create ``path`` (and parents) and check that files can be written in it.

    Raises
    ------
    UserError
        One line naming ``option``, the path and the reason: a read-only file
        system, a virtual one such as ``/proc`` or ``/sys``, no permission, a
        file in the way.
    """
    import tempfile

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # mkdir can succeed where files cannot be made (a read-only bind of an
        # existing folder): write and remove one.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".maphc2f-write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write {option} {path}: {exc.strerror or exc}") from None
    return path
