"""anomalib 2.7's MVTecAD and Folder datamodules load ``--format mvtec`` exports as they are (no download)."""

import pytest

pytest.importorskip("anomalib")
from anomalib.data import Folder, MVTecAD  # noqa: E402
from torchvision.transforms.v2 import Resize  # noqa: E402

from maphc2f_data.exporters import export_mvtec  # noqa: E402

CATEGORY = "nut"
DEFECTS = ("crack", "corrosion", "deformation")
SIZE = (32, 32)


@pytest.fixture(scope="module")
def exported(demo_build, tmp_path_factory):
    dest = tmp_path_factory.mktemp("anomalib") / "exported"
    export_mvtec(demo_build, dest)
    return dest


def _check(datamodule, n_train, n_test):
    datamodule.setup()
    assert len(datamodule.train_data) == n_train and len(datamodule.test_data) == n_test
    train = next(iter(datamodule.train_dataloader()))
    assert tuple(train.image.shape[1:]) == (3, *SIZE) and not train.gt_label.any()
    labels = 0
    for batch in datamodule.test_dataloader():
        assert tuple(batch.gt_mask.shape[1:]) == SIZE
        assert (batch.gt_mask.flatten(1).any(1) == batch.gt_label).all()  # a mask exactly for each anomaly
        labels += int(batch.gt_label.sum())
    return labels


def test_mvtecad_datamodule_loads_train_and_test_with_masks(exported):
    datamodule = MVTecAD(root=exported, category=CATEGORY, train_batch_size=4, eval_batch_size=8,
                         num_workers=0, augmentations=Resize(SIZE))
    assert _check(datamodule, n_train=8, n_test=26) == 24


def test_folder_datamodule_loads_the_category_folder(exported):
    datamodule = Folder(name=CATEGORY, root=exported / CATEGORY, normal_dir="train/good",
                        abnormal_dir=[f"test/{d}" for d in DEFECTS], normal_test_dir="test/good",
                        mask_dir=[f"ground_truth/{d}" for d in DEFECTS], train_batch_size=4, eval_batch_size=8,
                        num_workers=0, augmentations=Resize(SIZE), val_split_mode="none")
    assert _check(datamodule, n_train=8, n_test=26) == 24
