"""The dataset card (``README.md``), rendered from the manifest alone.

The YAML header is what ``datasets`` and the Hub read: one configuration per
category plus ``all`` (the default), each with ``data_files`` globs per split
that only ever match ``data/<category>/<split>-*.parquet`` (never the
``.cache`` folder) and a ``description`` naming the shards' content
fingerprint (it keys the ``datasets`` cache), and the licences present. The body is the template
``dataset_cards/maphc2f.md`` filled by :class:`string.Template`. Everything is
derived from the manifest, so equal manifests give byte-identical cards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import string
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from maphc2f_data.dataset.config import (
    CARD_NAME,
    COLUMNS,
    DATA_DIR,
    DEFECT_TYPES,
    SOURCE_LICENSES,
    SOURCE_PRETTY_NAMES,
    SPLITS,
)
from maphc2f_data.dataset.manifest import content_fingerprint
from maphc2f_data.dataset.shards import atomic_write_bytes
from maphc2f_data.names import RAW_STAGE, STAGES

#: The card template. It lives with the other dataset cards in the
#: repository's ``dataset_cards/``; ``templates/maphc2f.md`` in this package
#: is a link to it, which wheels resolve into a copy, so installed packages
#: have it too.
TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "maphc2f.md"

PRETTY_NAME = "MaPhC2F"
ALL_CONFIG = "all"

#: Order in which sources are listed (others follow alphabetically).
_SOURCE_ORDER = ("mvtec", "visa", "btad", "folder", "demo")

#: Hub licence identifiers, longest first so prefixes match the specific one.
_HF_LICENSE_IDS = (
    "cc-by-nc-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-sa-4.0",
    "cc-by-4.0",
    "cc0-1.0",
    "apache-2.0",
    "bsd-3-clause",
    "mit",
    "unknown",
)

#: Source references (from the paper's bibliography) for the attribution the
#: CC BY licences require.
_SOURCE_REFERENCES = {
    "mvtec": "Paul Bergmann, Michael Fauser, David Sattlegger, Carsten Steger. "
    "MVTec AD - A Comprehensive Real-World Dataset for Unsupervised Anomaly Detection. CVPR 2019.",
    "visa": "Yang Zou, Jongheon Jeong, Latha Pemula, Dongqing Zhang, Onkar Dabeer. "
    "SPot-the-Difference Self-Supervised Pre-training for Anomaly Detection and Segmentation. ECCV 2022.",
    "btad": "Pankaj Mishra, Riccardo Verk, Daniele Fornasier, Claudio Piciarelli, Gian Luca Foresti. "
    "VT-ADL: A Vision Transformer Network for Image Anomaly Detection and Localization. ISIE 2021.",
}

CITATION = """@misc{qian_maphc2f_bisqad,
  title  = {MathPhys-Guided Coarse-to-Fine Anomaly Synthesis with SQE-Driven Bi-Level Optimization for Anomaly Detection},
  author = {Qian, Long and Zhu, Bingke and Chen, Yingying and Tang, Ming and Wang, Jinqiao},
  note   = {MaPhC2F anomaly synthesis and the MaPhC2F Dataset; Institute of Automation, Chinese Academy of Sciences}
}"""

_COLUMN_DOCS = {
    "image": ("Image (PNG, RGB)", "the source image with one synthetic anomaly"),
    "mask": ("Image (PNG, L)", "anomaly mask, 0 = normal, 255 = anomalous"),
    "foreground": ("Image (PNG, L)", "object mask (0/255) the anomaly was confined to"),
    "sample_id": ("string", "stable unique id of the row"),
    "source_dataset": ("string", "source the image came from (mvtec, visa, btad, folder, demo)"),
    "category": ("string", "object or texture category (the configuration name)"),
    "defect_type": ("ClassLabel", ", ".join(f"{name} ({index})" for index, name in enumerate(DEFECT_TYPES))),
    "source_image": ("string", "path of the normal training image, relative to the source root"),
    "seed": ("int64", "seed of the sample's random generator"),
    "params": ("string (JSON)", "synthesis parameters of this sample"),
    "foreground_method": ("string", "how `foreground` was obtained (e.g. sam-vit_h, classical, whole-image)"),
    "stage": ("string", f"{RAW_STAGE} (physics model only) or, after refinement, "
                        f"{' / '.join(STAGES[1:])}"),
    "anomaly_area": ("float64", "fraction of the image covered by the mask"),
    "on_foreground": ("float64", "fraction of mask pixels inside the foreground"),
    "contrast": ("float64", "mean CIEDE2000 colour difference (before vs after) inside the mask"),
    "quality": ("float64, nullable", "synthesis quality score; null until scored"),
}

_CONFIG_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def hf_license_id(license_text: Optional[str]) -> str:
    """Hub licence id of a human licence string (``"CC BY 4.0"`` -> ``"cc-by-4.0"``).

    Free-text licences (``"CC0-1.0 (scikit-image photos) / ..."``) map by their
    leading identifier; anything unrecognised becomes ``"other"``.
    """
    if not license_text:
        return "unknown"
    normalised = re.sub(r"[\s_]+", "-", license_text.strip().lower())
    for license_id in _HF_LICENSE_IDS:
        if normalised == license_id or normalised.startswith(license_id + "-") or normalised.startswith(
            license_id + "("
        ):
            return license_id
    return "other"


def _size_category(total: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, label in bounds:
        if total < bound:
            return label
    return "1M<n<10M" if total < 10_000_000 else "n>10M"


def _source_key(source: str) -> tuple:
    return (_SOURCE_ORDER.index(source) if source in _SOURCE_ORDER else len(_SOURCE_ORDER), source)


def _ordered_categories(categories: Mapping[str, Mapping[str, Any]]) -> List[str]:
    return sorted(categories, key=lambda name: (_source_key(str(categories[name].get("source", ""))), name))


def _splits_of(entry: Mapping[str, Any]) -> List[str]:
    present = {shard.get("split") for shard in entry.get("shards") or []}
    return [split for split in SPLITS if split in present]


def _check_category_names(names: Sequence[str]) -> None:
    for name in names:
        if name == ALL_CONFIG or not _CONFIG_NAME_RE.match(name):
            raise ValueError(f"category name {name!r} cannot be a card configuration name")


def card_yaml(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """The YAML header of the card as a dict (key order is the output order)."""
    categories = manifest.get("categories") or {}
    names = _ordered_categories(categories)
    _check_category_names(names)
    licenses = sorted({hf_license_id(_license(categories[name])) for name in names})
    all_splits = [split for split in SPLITS if any(split in _splits_of(categories[n]) for n in names)]
    # The fingerprint changes the cache key ``datasets`` derives from the
    # configurations, so another or a rebuilt dataset never hits this one's cache.
    description = f"MaPhC2F shards {content_fingerprint(manifest)}"
    configs = [
        {
            "config_name": ALL_CONFIG,
            "default": True,
            "description": description,
            "data_files": [
                {"split": split, "path": f"{DATA_DIR}/*/{split}-*.parquet"} for split in all_splits
            ],
        }
    ]
    for name in names:
        if not _splits_of(categories[name]):
            continue  # a config without data files would break load_dataset
        configs.append(
            {
                "config_name": name,
                "description": description,
                "data_files": [
                    {"split": split, "path": f"{DATA_DIR}/{name}/{split}-*.parquet"}
                    for split in _splits_of(categories[name])
                ],
            }
        )
    total = int(manifest.get("total_rows") or 0)
    return {
        "pretty_name": PRETTY_NAME,
        "license": licenses,
        "task_categories": ["image-segmentation", "image-classification"],
        "tags": ["anomaly-detection", "synthetic", "industrial"],
        "size_categories": [_size_category(total)],
        "configs": configs,
    }


def _license(entry: Mapping[str, Any]) -> str:
    return entry.get("license") or SOURCE_LICENSES.get(entry.get("source", ""), "unknown")


def _pretty_source(entry: Mapping[str, Any]) -> str:
    source = entry.get("source", "")
    return entry.get("source_pretty_name") or SOURCE_PRETTY_NAMES.get(source, source)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str]) -> str:
    rule = ["---:" if side == "r" else ":---" for side in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows_of(entry: Mapping[str, Any], defect: str) -> int:
    return int((entry.get("rows") or {}).get(defect, 0))


def _split_rows(entry: Mapping[str, Any], split: str) -> int:
    return sum(int(shard.get("rows", 0)) for shard in entry.get("shards") or [] if shard.get("split") == split)


def _config_table(manifest: Mapping[str, Any], names: Sequence[str]) -> str:
    categories = manifest["categories"]
    rows = []
    for name in names:
        entry = categories[name]
        total = sum(_rows_of(entry, defect) for defect in DEFECT_TYPES)
        rows.append([f"`{name}`", _pretty_source(entry), _license(entry), f"{total:,}"])
    licences = sorted({_license(categories[name]) for name in names})
    rows.append([f"`{ALL_CONFIG}`", "all of the above", " + ".join(licences) + " (per row, by source)",
                 f"{int(manifest.get('total_rows') or 0):,}"])
    return _table(["configuration", "source", "licence", "rows"], rows, "lllr")


def _attribution(categories: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    sources: Dict[str, Mapping[str, Any]] = {}
    for name in names:
        sources.setdefault(categories[name].get("source", ""), categories[name])
    lines = ["Source datasets (attribution):", ""]
    for source in sorted(sources, key=_source_key):
        entry = sources[source]
        reference = _SOURCE_REFERENCES.get(source)
        text = f"- **{_pretty_source(entry)}**, licence {_license(entry)}"
        lines.append(text + (f": {reference}" if reference else "."))
    read: Dict[str, List[str]] = {}
    for name in names:
        read.setdefault(str(categories[name].get("images_read") or "normal training images"), []).append(name)
    lines += ["", "Images read from the sources:", ""]
    for text, group in read.items():
        lines.append(f"- {', '.join(f'`{name}`' for name in group)}: {text}.")
    return "\n".join(lines)


def _schema_table() -> str:
    return _table(["column", "type", "meaning"], [[f"`{c}`", *_COLUMN_DOCS[c]] for c in COLUMNS], "lll")


def _counts_table(manifest: Mapping[str, Any], names: Sequence[str]) -> str:
    categories = manifest["categories"]
    with_validation = any("validation" in _splits_of(categories[name]) for name in names)
    header = ["category", "source", *DEFECT_TYPES, "total"]
    if with_validation:
        header += ["train", "validation"]
    rows, sums = [], [0] * (len(header) - 2)
    for name in names:
        entry = categories[name]
        counts = [_rows_of(entry, defect) for defect in DEFECT_TYPES]
        counts.append(sum(counts))
        if with_validation:
            counts += [_split_rows(entry, "train"), _split_rows(entry, "validation")]
        sums = [a + b for a, b in zip(sums, counts)]
        rows.append([f"`{name}`", entry.get("source", ""), *(f"{n:,}" for n in counts)])
    rows.append(["**total**", "", *(f"**{n:,}**" for n in sums)])
    return _table(header, rows, "ll" + "r" * (len(header) - 2))


def _splits_section(manifest: Mapping[str, Any]) -> str:
    splits = manifest.get("splits") or {}
    fraction = float(splits.get("val_fraction") or 0.0)
    if fraction <= 0.0:
        return (
            "## Splits\n\nOnly a `train` split. `maphc2f splits <dir> --val-fraction 0.1 --seed 0` "
            "adds a deterministic `validation` split per category."
        )
    return (
        "## Splits\n\n"
        f"`validation` holds the rows whose SHA-256 hash of (seed {splits.get('seed')}, `sample_id`) "
        f"falls below the fraction {fraction:g}, per category; `train` holds the rest. "
        "Made with `maphc2f splits`; the assignment of a row never depends on the other rows."
    )


def _versions_table(manifest: Mapping[str, Any]) -> str:
    versions = manifest.get("versions") or {}
    rows = [[f"`{name}`", str(versions[name])] for name in sorted(versions)]
    rows.append(["manifest format", str(manifest.get("format_version", ""))])
    return _table(["package", "version"], rows, "ll")


def _sources_sentence(categories: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    per_source: Dict[str, List[str]] = {}
    for name in names:
        per_source.setdefault(categories[name].get("source", ""), []).append(name)
    parts = []
    for source in sorted(per_source, key=_source_key):
        entry = categories[per_source[source][0]]
        count = len(per_source[source])
        parts.append(f"{_pretty_source(entry)} ({count} categor{'y' if count == 1 else 'ies'})")
    return "; ".join(parts) if parts else "none"


def render_card(manifest: Mapping[str, Any], *, dir_name: str = "maphc2f", template: Optional[str] = None) -> str:
    """The card text for ``manifest``.

    Parameters
    ----------
    manifest : mapping
        A dataset manifest (see the build contract).
    dir_name : str
        Name of the dataset folder, used in the loading examples.
    template : str, optional
        Template text; defaults to ``dataset_cards/maphc2f.md``.
    """
    if template is None:
        template = TEMPLATE_PATH.read_text(encoding="utf-8")
    categories = manifest.get("categories") or {}
    names = _ordered_categories(categories)
    header = yaml.safe_dump(
        card_yaml(manifest), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    command = manifest.get("command") or []
    values = {
        "yaml_header": header,
        "pretty_name": PRETTY_NAME,
        "total_rows": f"{int(manifest.get('total_rows') or 0):,}",
        "num_categories": str(len(names)),
        "sources_sentence": _sources_sentence(categories, names),
        "dir_name": dir_name,
        "example_category": names[0] if names else ALL_CONFIG,
        "config_table": _config_table(manifest, names),
        "attribution": _attribution(categories, names),
        "schema_table": _schema_table(),
        "counts_table": _counts_table(manifest, names),
        "splits_section": _splits_section(manifest),
        "command": " ".join(shlex.quote(str(part)) for part in command) or "(not recorded)",
        "generation_config": json.dumps(_public_config(manifest.get("config") or {}), sort_keys=True, indent=2),
        "versions_table": _versions_table(manifest),
        "citation": CITATION,
    }
    return string.Template(template).substitute(values)


def write_card(out_dir: os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Render the card for ``manifest`` into ``out_dir/README.md`` atomically; returns its path."""
    out_dir = Path(out_dir)
    text = render_card(manifest, dir_name=out_dir.resolve().name)
    path = out_dir / CARD_NAME
    atomic_write_bytes(text.encode("utf-8"), path)
    return path


def _public_config(config: dict) -> dict:
    """The build config without the builder's local paths (the card is published)."""
    public = dict(config)
    for key in ("root", "sam_checkpoint"):
        if public.get(key):
            public[key] = Path(str(public[key])).name
    return public
