"""Name lists every layer shares that no registry owns.

Each list has exactly one home; everything else imports it from there:

* anomaly (defect) types: the synthesis registry,
  :data:`maphc2f_data.synthesis.DEFECT_TYPES` (registration order, which is
  also the ``defect_type`` ClassLabel order);
* sources: the source registry, :data:`maphc2f_data.sources.SOURCES`;
* SAM variants and refinement stages: here, because the layers that check
  them (planning, the dataset's validation, the foreground extractor, the
  torch models) sit on both sides of the torch boundary and none of them may
  import another layer's module just for a tuple of strings.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from maphc2f_data.errors import UserError

#: SAM variants of segment-anything's registry that this package accepts,
#: largest (the paper's) first.
SAM_MODELS: Tuple[str, ...] = ("vit_h", "vit_l", "vit_b")

#: ``stage`` values of a row, in pipeline order: the raw physics anomaly
#: (stage A), after npcF (coarse harmonisation), after npcF++ (fine texture
#: and boundary restoration).
STAGES: Tuple[str, ...] = ("raw", "npcf", "npcf++")
#: Stage of a row no model has touched.
RAW_STAGE = STAGES[0]


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices``, else a one-line :class:`UserError`.

    Parameters
    ----------
    value : str
    choices : sequence of str
    what : str
        What the value names, for the message (e.g. ``"SAM model"``).
    """
    if value not in choices:
        raise UserError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")
    return value


def check_sam_model(model_type: str) -> str:
    """``model_type`` if it names a SAM variant, else UserError listing them."""
    return check_choice(model_type, SAM_MODELS, "SAM model")
