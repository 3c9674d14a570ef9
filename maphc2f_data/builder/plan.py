"""Planning a build: every sample's id and seed fixed before any pixel is made.

A plan lists, per category, the samples to make (source image, defect type,
repeat, seed) and cuts them into shard tasks. Because everything random is
derived from the plan, which worker makes which shard never changes the
output, and a restarted build recognises the shards it already finished.

Assignment (``--count``)
    For a (category, defect type) with ``c`` planned samples over the ``n``
    training images sorted by path, sample ``j`` uses image ``j % n`` with
    repeat ``j // n``. ``--count paper`` takes ``c`` from the paper's Tables
    7-9 (exact whatever the tree holds); ``--count N`` makes ``c = N * n``.

Identity (:func:`derive_sample`)
    ``sha256("maphc2f-sample-v1" 0x1F seed 0x1F source 0x1F category 0x1F
    defect_type 0x1F source_image 0x1F repeat)`` over UTF-8 text, where
    ``source_image`` is the POSIX path relative to the source root. The first
    12 bytes in hex are the ``sample_id``; the next 8 bytes read as a big-endian
    integer and shifted right by one bit are the sample's ``seed`` (fits int64).
    Python's ``hash`` and global random state are never used.

Shards
    A category's samples are ordered by (source image, defect type, repeat),
    so a shard loads each source image and computes its foreground once, and
    cut into shards of at most ``rows_per_shard`` rows. A shard's plan hash is
    the sha256 of its planned samples plus the settings that change its
    bytes (:func:`bytes_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from maphc2f_data import __version__
from maphc2f_data.builder.paper_counts import (
    PAPER_COUNTS,
    PAPER_SAMPLES_PER_IMAGE,
    paper_train_images,
)
from maphc2f_data.errors import UserError
from maphc2f_data.names import SAM_MODELS
from maphc2f_data.synthesis import DEFECT_TYPES
from maphc2f_data.sources.base import Source, SourceImage

#: Version tag mixed into sample ids/seeds and plan hashes; bump it only when
#: the derivation itself changes (it changes every id).
PLAN_VERSION = "maphc2f-sample-v1"
#: Smallest accepted ``--size`` (the synthesisers need room to place anomalies).
MIN_SIZE = 32
#: Largest accepted ``--size``: twice the largest benchmark image side (VisA's
#: ~1,500 px rounded up); a 2,048 px RGB row is ~12 MB in memory, and shards
#: shrink to keep their size (:func:`default_rows_per_shard`).
MAX_SIZE = 2048
#: Reference image side for :data:`maphc2f_data.dataset.config.MAX_ROWS_PER_SHARD`.
REFERENCE_SIZE = 512

Count = Union[str, int]


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on.

    Attributes
    ----------
    source : str
        Source name ("demo", "mvtec", "visa", "btad", "folder").
    root : str or None
        Source root folder (None for the demo source).
    out : str
        Output dataset folder (default ``maphc2f`` so ``load_dataset("maphc2f")``
        works from the current directory).
    categories : tuple of str or None
        Categories to (re)build; None = every category of the source.
    count : "auto", "paper" or int
        Samples per source image and defect type, or "paper" for the exact
        counts of the paper's Tables 7-9. "auto": the paper's counts for the
        categories its tables list, 1 per image and type for every other
        category and source.
    seed : int
        Build seed (non-negative); every sample seed derives from it.
    size : int
        Side of the square output images; every image is resized to
        ``size x size`` (aspect ratio is not kept).
    png_compression : int or None
        OpenCV PNG compression level 0-9; None = the dataset layer's default.
    sam_checkpoint : str or None
        SAM checkpoint for foregrounds; None = the classical extractor.
    sam_model : str
        SAM variant of the checkpoint ("vit_h", "vit_l", "vit_b").
    device : str or None
        Torch device for SAM (None = CUDA when available).
    rows_per_shard : int or None
        Maximum rows per shard; None = :func:`default_rows_per_shard`.
    strict : bool
        Fail the build (after its report is saved) when a source image was
        skipped or a sample failed, instead of warning.
    npcf, npcfpp : str or None
        npcF / npcF++ checkpoints: every sample is refined through them
        (stage "npcf" or "npcf++"); None = raw samples.
    compile : bool
        Run the refiner's networks through ``torch.compile`` (needs
        ``npcf``; about 2x on a GPU after a first compiling batch). Compiled
        kernels may round differently, so it is part of the refine
        fingerprint: a resumed build never mixes the two.
    demo_train_count : int or None
        Demo source only: normal training renders per category, 1-100
        (None: the demo's 8). Train render ``i`` is the same for every
        count, so a larger count adds images and keeps the others' samples.
    """

    source: str
    root: Optional[str] = None
    out: str = "maphc2f"
    categories: Optional[Tuple[str, ...]] = None
    count: Count = "auto"
    seed: int = 0
    size: int = 512
    png_compression: Optional[int] = None
    sam_checkpoint: Optional[str] = None
    sam_model: str = "vit_h"
    device: Optional[str] = None
    rows_per_shard: Optional[int] = None
    strict: bool = False
    npcf: Optional[str] = None
    npcfpp: Optional[str] = None
    compile: bool = False
    demo_train_count: Optional[int] = None


def parse_count(text: Union[str, int]) -> Count:
    """``"paper"``, ``"auto"`` or a positive int from a ``--count`` value.

    Raises
    ------
    UserError
        Anything else.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        word = str(text).strip().lower()
        if word in ("paper", "auto"):
            return word
        try:
            value = int(word)
        except ValueError:
            raise UserError(f"--count must be 'paper' or a positive integer, got {text!r}") from None
    if value < 1:
        raise UserError(f"--count must be 'paper' or a positive integer, got {text!r}")
    return value


def resolve_count(config: BuildConfig) -> Count:
    """The effective count: "paper", "auto" or a positive int.

    "auto" stays "auto" for a source of the paper (each category then gets
    its paper counts if the paper's table lists it, else 1 per image and
    type: :func:`category_counts`) and becomes 1 for any other source.

    Raises
    ------
    UserError
        ``paper`` for a source the paper did not use, or a bad value.
    """
    count = parse_count(config.count)
    if count == "auto":
        return "auto" if config.source in PAPER_COUNTS else 1
    if count == "paper" and config.source not in PAPER_COUNTS:
        raise UserError(
            f"--count paper needs a source of the paper ({', '.join(sorted(PAPER_COUNTS))}), "
            f"not {config.source!r}; use --count N"
        )
    return count


def category_counts(source: str, category: str, count: Count, images: int) -> Dict[str, int]:
    """Samples per defect type of one category under the resolved ``count``.

    The paper's counts for a category its tables list (``paper``, or ``auto``
    on a paper source); ``count * images`` for an integer count; 1 per image
    and type for ``auto`` on a category the paper did not use (a user's own
    category in an MVTec-layout tree).
    """
    table = PAPER_COUNTS.get(source, {})
    if count in ("paper", "auto") and category in table:
        return dict(table[category])
    if count == "paper":  # make_plan refuses these before it gets here
        raise UserError(f"category {category!r} is not in the paper's {source} table; use --count N")
    per_image = 1 if count == "auto" else int(count)
    return {kind: per_image * images for kind in DEFECT_TYPES}


#: Torch devices ``--device`` accepts.
DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_config(config: BuildConfig) -> None:
    """Refuse options no build can honour (one-line :class:`UserError`)."""
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {config.seed!r}")
    if not MIN_SIZE <= config.size <= MAX_SIZE:
        raise UserError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {config.size}")
    if config.png_compression is not None and not 0 <= config.png_compression <= 9:
        raise UserError(f"--png-compression must be 0-9, got {config.png_compression}")
    if config.sam_model not in SAM_MODELS:
        raise UserError(f"--sam-model must be one of {', '.join(SAM_MODELS)}, got {config.sam_model!r}")
    if config.rows_per_shard is not None and config.rows_per_shard < 1:
        raise UserError(f"--rows-per-shard must be positive, got {config.rows_per_shard}")
    if config.device is not None and not DEVICE_RE.match(str(config.device)):
        raise UserError(f"--device must be cpu, cuda, cuda:N or mps, got {config.device!r}")
    if config.npcfpp and not config.npcf:
        raise UserError("--npcfpp needs --npcf (npcF++ refines npcF's output)")
    if config.compile and not config.npcf:
        raise UserError("--compile needs --npcf (it compiles the refinement networks)")
    if config.demo_train_count is not None:  # get_source refuses it for any other source, before the root
        from maphc2f_data.sources.demo import MAX_TRAIN_PER_CATEGORY

        count = config.demo_train_count
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TRAIN_PER_CATEGORY:
            raise UserError(f"--demo-train-count must be an integer in [1, {MAX_TRAIN_PER_CATEGORY}], got {count!r}")
    resolve_count(config)


def default_rows_per_shard(size: int) -> int:
    """Rows per shard for ``size``-pixel images.

    :data:`~maphc2f_data.dataset.config.MAX_ROWS_PER_SHARD` holds at 512 px;
    larger images get proportionally fewer rows so shards stay under the
    ~500 MB ``datasets`` limit.
    """
    from maphc2f_data.dataset.config import MAX_ROWS_PER_SHARD

    if size <= REFERENCE_SIZE:
        return MAX_ROWS_PER_SHARD
    return max(1, int(MAX_ROWS_PER_SHARD * (REFERENCE_SIZE / size) ** 2))


def effective_png_compression(config: BuildConfig) -> int:
    """``config.png_compression`` or the dataset layer's measured default."""
    if config.png_compression is not None:
        return int(config.png_compression)
    from maphc2f_data.dataset.config import DEFAULT_PNG_COMPRESSION

    return int(DEFAULT_PNG_COMPRESSION)


def foreground_setting(config: BuildConfig) -> str:
    """The foreground extractor the build asks for: "sam-<model>" or "classical"."""
    return f"sam-{config.sam_model}" if config.sam_checkpoint else "classical"


def _default_png_filter() -> str:
    from maphc2f_data.dataset.config import DEFAULT_PNG_FILTER

    return DEFAULT_PNG_FILTER


def refine_setting(config: BuildConfig) -> Optional[Dict[str, object]]:
    """The refiner the build asks for: stage and checkpoint hashes, or None (raw samples)."""
    if not config.npcf:
        return None
    from maphc2f_data.names import STAGES
    from maphc2f_data.refine.checkpoints import refiner_fingerprint

    setting = {"stage": STAGES[2] if config.npcfpp else STAGES[1], **refiner_fingerprint(config.npcf, config.npcfpp)}
    if config.compile:  # as CheckpointRefiner(compile=True).fingerprint records it
        setting["compiled"] = True
    return setting


def bytes_fingerprint(config: BuildConfig) -> Dict[str, object]:
    """Settings that change a shard's bytes for the same planned samples
    (with checkpoints: their hashes, so resuming with other weights rebuilds)."""
    refine = refine_setting(config)
    return {**({"refine": refine} if refine else {}),
        "plan_version": PLAN_VERSION,
        "package_version": __version__,
        "size": int(config.size),
        "png_compression": effective_png_compression(config),
        "png_filter": _default_png_filter(),
        "foreground": foreground_setting(config),
    }


# -- samples -------------------------------------------------------------


@dataclass(frozen=True)
class PlannedSample:
    """One sample to make.

    Attributes
    ----------
    sample_id : str
        24 hex digits, stable (see :func:`derive_sample`).
    seed : int
        Seed handed to the synthesiser, ``0 <= seed < 2**63``.
    defect_type : str
        "crack", "corrosion" or "deformation".
    repeat : int
        How many earlier samples of this type used the same image.
    item : SourceImage
        The normal training image (``item.path`` is relative to the root).
    """

    sample_id: str
    seed: int
    defect_type: str
    repeat: int
    item: SourceImage

    @property
    def category(self) -> str:
        return self.item.category

    def key(self) -> List[object]:
        """JSON-able identity used in plan hashes."""
        return [self.sample_id, self.seed, self.item.source, self.item.category,
                self.defect_type, self.item.path, self.repeat]


def derive_sample(build_seed: int, source: str, category: str, defect_type: str,
                  source_image: str, repeat: int) -> Tuple[str, int]:
    """The stable ``(sample_id, seed)`` of one planned sample.

    Parameters
    ----------
    build_seed : int
        The build's ``--seed``.
    source, category, defect_type : str
        As stored in the row.
    source_image : str
        POSIX path relative to the source root.
    repeat : int
        Index of this sample among the same image's samples of this type.

    Returns
    -------
    sample_id : str
        First 12 bytes of the digest as 24 hex digits.
    seed : int
        Next 8 bytes, big-endian, shifted right by one bit (``< 2**63``).
    """
    text = "\x1f".join([PLAN_VERSION, str(int(build_seed)), source, category, defect_type,
                        source_image, str(int(repeat))])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return digest[:12].hex(), int.from_bytes(digest[12:20], "big") >> 1


@dataclass(frozen=True)
class CategoryPlan:
    """The samples of one category, in shard order (image, type, repeat)."""

    category: str
    source: str
    source_images: int
    counts: Mapping[str, int]
    samples: Tuple[PlannedSample, ...]

    def summary(self) -> Dict[str, object]:
        """The category entry of the dry-run JSON."""
        entry: Dict[str, object] = {"source": self.source, "source_images": self.source_images}
        entry.update({kind: int(self.counts[kind]) for kind in DEFECT_TYPES})
        return entry


@dataclass(frozen=True)
class BuildPlan:
    """What a build will make.

    Attributes
    ----------
    config : BuildConfig
        The configuration it was planned from.
    count : "paper" or int
        The resolved ``--count``.
    categories : dict
        Category name -> :class:`CategoryPlan`, sorted by name.
    warnings : tuple of str
        Things the user should know (train-image counts differing from the
        paper's, paper categories missing from the tree).
    source : Source or None
        The opened source the plan was made from.
    """

    config: BuildConfig
    count: Count
    categories: Mapping[str, CategoryPlan]
    warnings: Tuple[str, ...] = field(default=())
    source: Optional[Source] = field(default=None, compare=False, repr=False)

    @property
    def total(self) -> int:
        return sum(len(plan.samples) for plan in self.categories.values())

    def tasks(self) -> List["ShardTask"]:
        """Every shard task of the plan, by category then index."""
        config = self.config
        rows = config.rows_per_shard or default_rows_per_shard(config.size)
        fingerprint = bytes_fingerprint(config)
        return [task for plan in self.categories.values() for task in shard_tasks(plan, rows, fingerprint)]

    def summary(self) -> Dict[str, object]:
        """``{"total": int, "categories": {cat: {"source", "source_images",
        "crack", "corrosion", "deformation"}}}`` (what ``--dry-run`` prints)."""
        return {
            "total": self.total,
            "categories": {name: plan.summary() for name, plan in self.categories.items()},
        }


def plan_category(source_name: str, category: str, items: Sequence[SourceImage],
                  counts: Mapping[str, int], build_seed: int) -> CategoryPlan:
    """Assign ``counts[type]`` samples round-robin over ``items``.

    Parameters
    ----------
    source_name, category : str
    items : sequence of SourceImage
        The category's normal training images (sorted here by path).
    counts : mapping
        Defect type -> number of samples.
    build_seed : int

    Raises
    ------
    UserError
        ``items`` is empty.
    """
    items = sorted(items, key=lambda item: item.path)
    if not items:
        raise UserError(f"category {category!r} of source {source_name!r} has no training images")
    n = len(items)
    keyed = []
    for type_index, kind in enumerate(DEFECT_TYPES):
        for j in range(int(counts[kind])):
            image_index, repeat = j % n, j // n
            item = items[image_index]
            sample_id, seed = derive_sample(build_seed, source_name, category, kind, item.path, repeat)
            keyed.append(((image_index, type_index, repeat),
                          PlannedSample(sample_id, seed, kind, repeat, item)))
    keyed.sort(key=lambda pair: pair[0])
    return CategoryPlan(category=category, source=source_name, source_images=n,
                        counts={kind: int(counts[kind]) for kind in DEFECT_TYPES},
                        samples=tuple(sample for _, sample in keyed))


def make_plan(config: BuildConfig, source: Optional[Source] = None) -> BuildPlan:
    """Check ``config`` and plan every sample of it (what ``--dry-run`` prints).

    Parameters
    ----------
    config : BuildConfig
    source : Source, optional
        The opened source of ``config``; by default
        ``get_source(config.source, config.root)``, opened after the options
        are checked.

    Raises
    ------
    UserError
        Bad options, source or layout, unknown categories, or a category the
        paper's tables do not list under ``--count paper``.
    """
    check_config(config)
    if source is None:
        from maphc2f_data.sources import get_source

        source = get_source(config.source, config.root, demo_train_count=config.demo_train_count)
    count = resolve_count(config)
    available = list(source.categories())
    warnings: List[str] = []
    if config.categories:
        unknown = [name for name in config.categories if name not in available]
        if unknown:
            raise UserError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} for source "
                f"{source.name!r}; valid: {', '.join(available)}"
            )
        selected = sorted(set(config.categories))
    else:
        selected = sorted(available)
    table = PAPER_COUNTS.get(source.name, {})
    outside = [name for name in selected if name not in table]
    if count == "paper" and outside:
        raise UserError(
            f"categor{'y' if len(outside) == 1 else 'ies'} {', '.join(outside)} not in the paper's "
            f"{source.name} table: --count paper cannot build "
            f"{'it' if len(outside) == 1 else 'them'}; use --count N (or --categories to leave "
            f"{'it' if len(outside) == 1 else 'them'} out)"
        )
    if count == "auto" and outside:
        warnings.append(f"{', '.join(outside)}: not in the paper's {source.name} table; "
                        "1 sample per image and type (--count auto)")
    if count in ("paper", "auto"):
        missing = sorted(set(table) - set(available))
        if missing and not config.categories:
            warnings.append(f"paper categories missing from the {source.name} tree: {', '.join(missing)}")
    categories: Dict[str, CategoryPlan] = {}
    for name in selected:
        items = source.train_images(name)
        warnings.extend(source.notes(name))
        counts = category_counts(source.name, name, count, len(items))
        plan = plan_category(source.name, name, items, counts, config.seed)
        if count in ("paper", "auto") and name in table:
            expected = paper_train_images(source.name, name)
            if plan.source_images != expected:
                warnings.append(
                    f"{source.name}/{name}: the tree has {plan.source_images} training images, the paper's "
                    f"table implies {expected} ({PAPER_SAMPLES_PER_IMAGE[source.name]} per image and type); "
                    "counts stay exact, images repeat round-robin"
                )
        categories[name] = plan
    return BuildPlan(config=config, count=count, categories=categories, warnings=tuple(warnings), source=source)


# -- shards --------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """One shard to write: the unit of work a runner hands to a worker.

    Attributes
    ----------
    category : str
    index, total : int
        Position of the shard among the category's ``total`` shards.
    samples : tuple of PlannedSample
        Rows in order.
    plan_hash : str
        sha256 hex of the samples and the bytes-affecting settings; stored in
        the shard so a restart can tell a finished identical shard.
    split : str
        Split the shard belongs to; builds write "train" (``maphc2f splits``
        makes validation shards later).
    """

    category: str
    index: int
    total: int
    samples: Tuple[PlannedSample, ...]
    plan_hash: str
    split: str = "train"

    @property
    def filename(self) -> str:
        from maphc2f_data.dataset.shards import shard_filename

        return shard_filename(self.split, self.index, self.total)

    @property
    def relpath(self) -> str:
        """POSIX path of the shard relative to the output folder."""
        from maphc2f_data.dataset.config import DATA_DIR

        return f"{DATA_DIR}/{self.category}/{self.filename}"


def plan_hash(samples: Sequence[PlannedSample], fingerprint: Mapping[str, object]) -> str:
    """sha256 hex of a shard's samples and the settings that change its bytes."""
    payload = {"config": dict(fingerprint), "samples": [sample.key() for sample in samples]}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shard_tasks(plan: CategoryPlan, rows_per_shard: int, fingerprint: Mapping[str, object]
                ) -> List[ShardTask]:
    """Cut a category's samples into shard tasks of at most ``rows_per_shard``."""
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be positive, got {rows_per_shard}")
    total = max(1, math.ceil(len(plan.samples) / rows_per_shard))
    tasks = []
    for index in range(total):
        chunk = plan.samples[index * rows_per_shard:(index + 1) * rows_per_shard]
        tasks.append(ShardTask(plan.category, index, total, tuple(chunk), plan_hash(chunk, fingerprint)))
    return tasks
