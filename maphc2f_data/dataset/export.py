"""The I/O half of ``maphc2f export``: safe destinations, file names, rows, the marker.

The format writers (MVTec AD, COCO, YOLO) live in :mod:`maphc2f_data.exporters`
(they need the source's normal images, a layer above this one). Everything
they share that only touches files is here:

* :func:`export_session` checks the dataset and the destination, holds the
  dataset's lock (shared) and writes the provenance marker
  (:data:`~maphc2f_data.dataset.folders.EXPORT_MARKER`) first, so an
  interrupted export is still recognised as one, and again at the end with
  what was written;
* :class:`ExportSession` writes files only inside the destination (never
  through a symlink, never into an inode an earlier ``--link`` export shares
  with a source file) and reads the dataset's rows per category and split;
* :func:`file_stem` and :func:`unique_stems` make safe, distinct file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from maphc2f_data import __version__
from maphc2f_data.dataset.folders import EXPORT_MARKER, check_export_output, make_output_dir, require_dataset
from maphc2f_data.dataset.lock import dataset_lock
from maphc2f_data.dataset.manifest import content_fingerprint, read_manifest, resolve_shard_path
from maphc2f_data.dataset.shards import atomic_write_bytes, iter_rows, parse_shard_filename
from maphc2f_data.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SAFE_CATEGORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Longest kept file stem (file names stay far below the usual 255-byte limit).
MAX_STEM = 120
#: Splits in the order exports write them.
SPLIT_ORDER = ("train", "validation", "test")


def file_stem(sample_id: str) -> str:
    """A file name stem for ``sample_id``, unique per id and safe on every OS.

    Ids made only of ``[A-Za-z0-9._-]`` (not starting with a dot, at most
    :data:`MAX_STEM` characters) are kept; others have the unsafe characters
    replaced by ``_``, are cut to :data:`MAX_STEM` characters and get 8 hex
    digits of the id's SHA-256 appended, so two ids never share a file.

    >>> file_stem("bottle-crack-000001")
    'bottle-crack-000001'
    >>> file_stem("bottle/crack 1")
    'bottle_crack_1-992f61c7'
    """
    stem = _UNSAFE.sub("_", sample_id).lstrip(".")
    if stem == sample_id and 0 < len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:8]
    return f"{stem[:MAX_STEM] or 'sample'}-{digest}"


def unique_stems(paths: Iterable[str]) -> Dict[str, str]:
    """Distinct safe file stems for source image paths, named after each path's stem.

    A path whose stem no other path shares keeps it (through :func:`file_stem`);
    paths sharing a stem (``a/001.png`` and ``b/001.png``) are named after
    their whole path without the suffix (``a_001-<hash>``), so the result
    depends only on the set of paths.

    >>> unique_stems(["nut/train/good/000.png", "nut/train/good/001.png"])
    {'nut/train/good/000.png': '000', 'nut/train/good/001.png': '001'}
    >>> sorted(unique_stems(["a/001.png", "b/001.jpg"]).values())
    ['a_001-2e47af5f', 'b_001-fd1d3327']
    """
    paths = sorted(set(paths))
    counts = Counter(PurePosixPath(p).stem for p in paths)
    names: Dict[str, str] = {}
    for path in paths:
        pure = PurePosixPath(path)
        names[path] = file_stem(pure.stem) if counts[pure.stem] == 1 else file_stem(str(pure.with_suffix("")))
    clashes = [name for name, n in Counter(names.values()).items() if n > 1]
    if clashes:  # only with hand-made names colliding with hashed ones
        names = {path: file_stem(path) for path in paths}
    return names


def png_size(data: bytes) -> Tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk, without decoding it."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise UserError("a stored image is not a PNG; run `maphc2f validate` on the dataset")
    return struct.unpack(">II", data[16:24])


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (no file system access)."""
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def parse_categories(text: Optional[str]) -> Optional[List[str]]:
    """``"a,b"`` -> ``["a", "b"]`` (None for None; empty names dropped)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError("--categories names no category")
    return names


@dataclass
class ExportSession:
    """An export in progress: the dataset read, the destination written.

    Attributes
    ----------
    root, dest : Path
        The dataset and the export folder (both resolved).
    manifest : dict
    categories : list of str
        The categories exported, sorted.
    link : bool
        Whether :meth:`link_or_write` may link files instead of writing them.
    linked : Counter
        ``hardlink``/``symlink``/``written`` counts of :meth:`link_or_write`.
    tops : list of str
        The top-level folders this format writes (for :meth:`remove_stale`).
    written : set of str
        Paths (relative to ``dest``) written by this session.
    """

    root: Path
    dest: Path
    manifest: Dict[str, Any]
    categories: List[str]
    link: bool = False
    linked: Counter = field(default_factory=Counter)
    tops: List[str] = field(default_factory=list)
    written: set = field(default_factory=set)

    def _target(self, rel: str) -> Path:
        path = self.dest / rel
        # Checked before mkdir: a symlinked folder in dest must not even get sub-folders.
        if not inside(path.parent.resolve(), self.dest) or not inside(path.parent, self.dest):
            raise UserError(f"refusing to write outside the export folder {self.dest}: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            if path.is_dir() and not path.is_symlink():
                raise UserError(f"a folder is in the way of an export file: {path}")
            # Never write into an earlier export's link: unlink it, then write a new file.
            path.unlink()
        self.written.add(path.relative_to(self.dest).as_posix())
        return path

    def remove_stale(self) -> int:
        """Delete what an earlier export into ``dest`` left in this format's top folders and this
        session did not write (images of rows that are gone, a split that no longer exists),
        so a re-export holds exactly this export. Returns the number of files removed.

        Only plain files and file links are removed, never followed; a symlinked folder is left
        alone (nothing is written through one, see :meth:`_target`); emptied folders go too.
        """
        removed = 0
        for top in self.tops:
            base = self.dest / top
            if base.is_symlink() or not base.is_dir():
                continue
            for folder, dirnames, filenames in os.walk(base, topdown=False, followlinks=False):
                here = Path(folder)
                for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
                    path = here / name
                    if path.is_dir() and not path.is_symlink():
                        continue
                    if path.is_symlink() and path.resolve().is_dir():
                        continue  # a symlinked folder: not ours to touch
                    if path.relative_to(self.dest).as_posix() not in self.written:
                        path.unlink()
                        removed += 1
                if here != base and not any(here.iterdir()):
                    here.rmdir()
        return removed

    def write(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``dest/rel`` (a new file; an earlier one is replaced, never written through)."""
        path = self._target(rel)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def link_or_write(self, rel: str, source: Optional[Path], data_fn) -> str:
        """Hard-link (else symlink) ``source`` at ``dest/rel`` when linking is on, else write ``data_fn()``.

        Returns how the file got there: ``"hardlink"``, ``"symlink"`` or ``"written"``.
        """
        path = self._target(rel)
        how = "written"
        if self.link and source is not None:
            try:
                os.link(source, path)
                how = "hardlink"
            except OSError:
                try:
                    os.symlink(Path(source).resolve(), path)
                    how = "symlink"
                except OSError:
                    pass
        if how == "written":
            self.write(rel, data_fn())
        self.linked[how] += 1
        return how

    def shards(self, category: str) -> List[Tuple[str, Path]]:
        """``(split, shard file)`` of ``category``, in :data:`SPLIT_ORDER` then path order."""
        entry = (self.manifest.get("categories") or {}).get(category) or {}
        found = []
        for shard in sorted(entry.get("shards") or [], key=lambda s: str(s.get("path"))):
            path = resolve_shard_path(self.root, shard.get("path"), category)
            if path is None or not path.is_file():
                raise UserError(f"shard {shard.get('path')!r} is missing or outside {self.root}/data; "
                                f"run `maphc2f validate {self.root}`")
            split = parse_shard_filename(path.name)["split"]
            found.append((split, path))
        order = {split: i for i, split in enumerate(SPLIT_ORDER)}
        return sorted(found, key=lambda item: (order.get(item[0], len(order)), item[0], str(item[1])))

    def splits(self) -> List[str]:
        """The splits the exported categories have, in :data:`SPLIT_ORDER`."""
        seen = {split for category in self.categories for split, _ in self.shards(category)}
        order = {split: i for i, split in enumerate(SPLIT_ORDER)}
        return sorted(seen, key=lambda s: (order.get(s, len(order)), s))

    def rows(self, category: str, columns: Sequence[str], split: Optional[str] = None
             ) -> Iterator[Tuple[str, Dict[str, Any]]]:
        """``(split, row)`` for every row of ``category`` (of ``split`` only, if given)."""
        for shard_split, path in self.shards(category):
            if split is None or shard_split == split:
                for row in iter_rows(path, columns=list(columns)):
                    yield shard_split, row

    def marker(self, fmt: str, **extra: Any) -> Dict[str, Any]:
        """The provenance the marker file holds."""
        return {"made_by": "maphc2f export", "format": fmt, "dataset": str(self.root),
                "dataset_fingerprint": content_fingerprint(self.manifest),
                "dataset_rows": self.manifest.get("total_rows"),
                "categories": self.categories, "link": self.link,
                "package_version": __version__, **extra}

    def write_marker(self, fmt: str, **extra: Any) -> int:
        """Write the marker; the final one (``complete=True``) first removes stale files
        (:meth:`remove_stale`) and records how many went (``stale_removed``, also returned)."""
        removed = 0
        if extra.get("complete"):
            removed = extra["stale_removed"] = self.remove_stale()
        atomic_write_bytes(json.dumps(self.marker(fmt, **extra), indent=2).encode("utf-8") + b"\n",
                           self.dest / EXPORT_MARKER)
        return removed


def _select(root: Path, manifest: Dict[str, Any], wanted: Optional[Sequence[str]]) -> List[str]:
    present = sorted(manifest.get("categories") or {})
    if wanted is None:
        return present
    unknown = sorted(set(wanted) - set(present))
    if unknown:
        raise UserError(f"category {unknown[0]!r} is not in {root}; valid: {', '.join(present) or 'none'}")
    return sorted(set(wanted))


def _check_targets(root: Path, dest: Path, categories: Sequence[str], tops: Sequence[str]) -> None:
    for category in categories:
        if not _SAFE_CATEGORY.match(category):
            raise UserError(f"category name {category!r} is not a safe folder name in {root}")
    for top in tops:
        if inside(root, dest / top):
            raise UserError(f"exporting to {dest} would write into the dataset itself ({dest / top})")


@contextlib.contextmanager
def export_session(out_dir: os.PathLike, dest: os.PathLike, fmt: str, *,
                   categories: Optional[Sequence[str]] = None, link: bool = False,
                   top_folders: Optional[Sequence[str]] = None) -> Iterator[ExportSession]:
    """Check, lock and mark an export of ``out_dir`` into ``dest``.

    Parameters
    ----------
    out_dir : path-like
        A built dataset (with ``manifest.json``).
    dest : path-like
        Export folder; created if needed; must not lie inside ``out_dir``,
        and must be new, empty or an earlier export (recognised by its
        :data:`EXPORT_MARKER`, written first).
    fmt : str
        Format name recorded in the marker.
    categories : sequence of str, optional
        Only these categories (default: all).
    link : bool
        Allow :meth:`ExportSession.link_or_write` to link files.
    top_folders : sequence of str, optional
        The top-level folders the format writes (default: the category names).

    Yields
    ------
    ExportSession
        The caller writes the files, then calls ``session.write_marker(fmt,
        complete=True, ...)``.

    Raises
    ------
    UserError
        ``out_dir`` is not a built dataset, ``dest`` is inside it, holds files
        of something else or would write into the dataset, an unknown
        category, or a build is writing ``out_dir``.
    """
    root = Path(out_dir).expanduser().resolve()
    dest = Path(dest).expanduser().resolve()
    require_dataset(root)
    if inside(dest, root):
        raise UserError(f"export folder must not be inside the dataset: {dest}")
    chosen = _select(root, read_manifest(root) or {}, categories)
    _check_targets(root, dest, chosen, chosen if top_folders is None else top_folders)
    check_export_output(dest)
    with dataset_lock(root, "maphc2f export", shared=True):
        manifest = read_manifest(root) or {}
        chosen = _select(root, manifest, categories)
        _check_targets(root, dest, chosen, chosen if top_folders is None else top_folders)
        make_output_dir(dest)
        session = ExportSession(root=root, dest=dest, manifest=manifest, categories=chosen, link=link,
                                tops=list(chosen if top_folders is None else top_folders))
        # The marker goes first: an interrupted export is still recognised as one.
        session.write_marker(fmt, complete=False)
        yield session

