"""Math-physics anomaly synthesis (numpy/scipy/scikit-image/OpenCV only).

Importing this package registers the built-in types: ``crack``,
``corrosion`` and ``deformation``. Nothing here imports torch or ray.
"""

from maphc2f_data.synthesis.base import (
    ANOMALY_TYPES,
    MAX_ATTEMPTS,
    AnomalyType,
    PlacementError,
    Synthesis,
    SynthesisError,
    register_anomaly,
    synthesize,
)

# Registration side effects: each module adds its type to ANOMALY_TYPES.
from maphc2f_data.synthesis import crack, corrosion, deformation  # noqa: E402,F401

#: The package's anomaly types in registration order: the one list every other
#: layer reads (the dataset's ``defect_type`` ClassLabel names and their
#: stored indices, the paper's count tables, the card, the preview columns).
#: A type registered in a module imported above appears everywhere.
DEFECT_TYPES = tuple(ANOMALY_TYPES)

__all__ = [
    "ANOMALY_TYPES",
    "DEFECT_TYPES",
    "MAX_ATTEMPTS",
    "AnomalyType",
    "PlacementError",
    "Synthesis",
    "SynthesisError",
    "register_anomaly",
    "synthesize",
]
