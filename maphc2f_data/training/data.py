"""Training data: a dataset's shards streamed one Parquet row group at a time.

:class:`ShardRows` is a torch ``IterableDataset``: it never holds more than one
row group (100 rows) per DataLoader worker, whatever the size of the build.
Every row has a stable ``index`` (its position in the manifest's shard order),
which per-sample state such as BiSQAD's data weights keys on. Shuffling is
by row group and then within it, from a seed passed in (never global state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from maphc2f_data.errors import UserError


def dataset_categories(dataset_dir: os.PathLike, categories: Optional[Sequence[str]] = None
                       ) -> Tuple[Path, Dict[str, Any], List[str]]:
    """``(root, manifest category entries, chosen categories)`` of a built dataset.

    Raises
    ------
    UserError
        No manifest, or an unknown category (the message lists the valid ones).
    """
    from maphc2f_data.dataset.manifest import read_manifest

    root = Path(dataset_dir).expanduser().resolve()
    manifest = read_manifest(root)
    if manifest is None:
        raise UserError(f"not a built MaPhC2F dataset (no manifest.json): {root}")
    entries = manifest.get("categories") or {}
    chosen = list(categories) if categories else sorted(entries)
    unknown = [name for name in chosen if name not in entries]
    if unknown:
        raise UserError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} in {root}; "
                        f"valid: {', '.join(sorted(entries))}")
    return root, entries, chosen


def shard_paths(dataset_dir: os.PathLike, categories: Optional[Sequence[str]] = None,
                split: str = "train") -> List[Path]:
    """The manifest's shards of ``categories`` (None: all) and ``split``, in manifest order.

    Raises
    ------
    UserError
        No manifest, an unknown category, or no shard of that split.
    """
    from maphc2f_data.dataset.manifest import resolve_shard_path

    root, entries, chosen = dataset_categories(dataset_dir, categories)
    paths = []
    for name in chosen:
        for shard in sorted(entries[name].get("shards") or [], key=lambda s: s["path"]):
            if shard.get("split") != split:
                continue
            path = resolve_shard_path(root, shard.get("path"), name)
            if path is None or not path.is_file():
                raise UserError(f"shard listed in the manifest is missing or unsafe: {shard.get('path')}; "
                                f"run `maphc2f validate {root}`")
            paths.append(path)
    if not paths:
        raise UserError(f"no {split} shards for {', '.join(chosen)} in {root}")
    return paths


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (H, W) -> float32 (C, H, W) in [0, 1]."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


class ShardRows(IterableDataset):
    """Rows of a built dataset, streamed by row group.

    Parameters
    ----------
    dataset_dir : path
        A built dataset.
    categories : sequence of str, optional
        Only these categories (default: all).
    split : str
        "train" or "validation".
    with_normal : bool
        Add each row's normal source image (``normal``), re-read through
        :class:`maphc2f_data.sampling.NormalImages`.
    roots : mapping, optional
        Source name -> root overriding the manifest's (see ``NormalImages``).
    seed : int, optional
        Shuffle row groups and rows with this seed (None: manifest order).
        Call :meth:`set_epoch` to reshuffle deterministically each epoch.

    Yields
    ------
    dict
        ``index`` (int), ``sample_id``, ``category``, ``defect_type`` (int),
        ``seed`` (int), ``source_image``, ``stage``, ``image`` float32 (3, H, W)
        in [0, 1], ``mask`` float32 (1, H, W) in {0, 1}, and ``normal`` like
        ``image`` when ``with_normal``.
    """

    def __init__(self, dataset_dir: os.PathLike, *, categories: Optional[Sequence[str]] = None,
                 split: str = "train", with_normal: bool = True, roots: Optional[Mapping[str, str]] = None,
                 seed: Optional[int] = None) -> None:
        import pyarrow.parquet as pq

        super().__init__()
        self.dataset_dir = Path(dataset_dir).expanduser().resolve()
        self.paths = shard_paths(self.dataset_dir, categories, split)
        self.with_normal = with_normal
        self.roots = dict(roots or {})
        self.seed = seed
        self.epoch = 0
        # (path, row group, first global index, rows) for every row group.
        self.groups: List[Tuple[Path, int, int, int]] = []
        offset = 0
        for path in self.paths:
            metadata = pq.read_metadata(path)
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                self.groups.append((path, group, offset, rows))
                offset += rows
        self.total = offset
        self._normals = None

    def __len__(self) -> int:
        return self.total

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle order of ``epoch`` (with ``seed``)."""
        self.epoch = int(epoch)

    def _order(self) -> Tuple[List[Tuple[Path, int, int, int]], Optional[np.random.Generator]]:
        if self.seed is None:
            return list(self.groups), None
        rng = np.random.default_rng([int(self.seed), self.epoch])
        order = rng.permutation(len(self.groups))
        return [self.groups[i] for i in order], rng

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        import pyarrow.parquet as pq

        from maphc2f_data.dataset.png import decode_png

        groups, rng = self._order()
        worker = get_worker_info()
        if worker is not None:  # each DataLoader worker reads its own row groups
            groups = groups[worker.id::worker.num_workers]
        if self.with_normal and self._normals is None:
            from maphc2f_data.sampling import NormalImages

            self._normals = NormalImages(self.dataset_dir, self.roots)
        for path, group, first, rows in groups:
            table = pq.ParquetFile(path).read_row_group(group).to_pylist()
            positions = rng.permutation(rows) if rng is not None else range(rows)
            for position in positions:
                row = table[int(position)]
                image = decode_png(row["image"]["bytes"])
                item = {
                    "index": first + int(position),
                    "sample_id": row["sample_id"],
                    "category": row["category"],
                    "defect_type": int(row["defect_type"]),
                    "seed": int(row["seed"]),
                    "source_image": row["source_image"],
                    "stage": row["stage"],
                    "image": to_tensor(image),
                    "mask": (to_tensor(decode_png(row["mask"]["bytes"])) > 0.5).float(),
                }
                if self.with_normal:
                    normal = self._normals.image(row["category"], row["source_image"], image.shape[0])
                    item["normal"] = to_tensor(normal)
                yield item
