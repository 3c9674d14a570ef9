"""The Arrow schema equals what ``datasets`` itself builds and writes."""

import json

import datasets
import pyarrow as pa
from datasets.arrow_writer import ArrowWriter

from maphc2f_data.dataset.config import COLUMNS, DEFECT_TYPES
from maphc2f_data.dataset.schema import (
    HF_METADATA_KEY,
    MAPHC2F_METADATA_KEY,
    arrow_schema,
    features,
    huggingface_metadata,
)


def test_columns_are_in_contract_order_with_contract_types():
    schema = arrow_schema()
    assert schema.names == list(COLUMNS)
    image_struct = pa.struct({"bytes": pa.binary(), "path": pa.string()})
    for column in ("image", "mask", "foreground"):
        assert schema.field(column).type == image_struct
    assert schema.field("defect_type").type == pa.int64()
    assert schema.field("seed").type == pa.int64()
    assert schema.field("quality").type == pa.float64() and schema.field("quality").nullable


def test_pure_pyarrow_schema_equals_the_datasets_features_schema():
    expected = features().arrow_schema
    assert arrow_schema().equals(expected, check_metadata=True)


def test_huggingface_metadata_is_byte_identical_to_datasets_writer():
    written = ArrowWriter._build_metadata(datasets.DatasetInfo(features=features()))
    assert huggingface_metadata() == written["huggingface"].encode()
    assert arrow_schema().metadata[HF_METADATA_KEY] == huggingface_metadata()


def test_features_decode_images_and_class_label():
    feats = features()
    assert isinstance(feats["image"], datasets.Image) and isinstance(feats["mask"], datasets.Image)
    assert isinstance(feats["defect_type"], datasets.ClassLabel)
    assert feats["defect_type"].names == list(DEFECT_TYPES)
    assert datasets.Features.from_arrow_schema(arrow_schema()) == feats


def test_shard_metadata_is_canonical_json():
    schema = arrow_schema({"b": 1, "a": [1, 2]})
    assert schema.metadata[MAPHC2F_METADATA_KEY] == b'{"a":[1,2],"b":1}'
    assert json.loads(schema.metadata[MAPHC2F_METADATA_KEY]) == {"a": [1, 2], "b": 1}
    assert MAPHC2F_METADATA_KEY not in arrow_schema().metadata
