"""The Refiner protocol and the identity refiner every raw build uses."""

import numpy as np
import pytest

from maphc2f_data.names import STAGES
from maphc2f_data.refine import IdentityRefiner, Refiner, check_refined


def test_identity_refiner_is_a_refiner_that_changes_nothing():
    refiner = IdentityRefiner()
    assert isinstance(refiner, Refiner)
    raw = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert refiner.refine(raw * 0, raw, np.zeros((4, 4), bool)) is raw
    assert refiner.stage == STAGES[0] and dict(refiner.fingerprint) == {}


def test_check_refined_refuses_bad_outputs_and_unknown_stages():
    raw = np.zeros((4, 4, 3), np.uint8)

    class Odd:
        stage = "blurred"
        fingerprint = {}

        def refine(self, normal, raw, mask):
            return raw

    with pytest.raises(ValueError, match="stage 'blurred'"):
        check_refined(Odd(), raw, raw)
    with pytest.raises(ValueError, match="expected uint8"):
        check_refined(IdentityRefiner(), raw.astype(np.float32), raw)
    assert check_refined(IdentityRefiner(), raw, raw) is not None
