"""One epoch of anomalib's DRAEM on a ``maphc2f export --format mvtec`` folder, on the CPU, offline.

Not part of the test suite (it trains a model); run by hand to check that an
export trains as it is::

    maphc2f-build --source demo --size 64 --count 1 --categories nut --out /tmp/demo/maphc2f
    maphc2f export /tmp/demo/maphc2f --format mvtec --out /tmp/demo/mvtec
    python scripts/anomalib_one_epoch.py /tmp/demo/mvtec --category nut --image-size 64

DRAEM pastes textures from DTD into normal images; offline, ``Draem(dtd_dir=...)``
needs an existing folder (here an empty temporary one: it then falls back to
Perlin noise only) or it tries to download DTD. Prints the wall time and the
test metrics.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="an export folder of `maphc2f export --format mvtec`")
    parser.add_argument("--category", default="nut")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    warnings.filterwarnings("ignore", category=UserWarning)  # lightning's advice on workers/loggers
    start = time.perf_counter()
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from anomalib.models import Draem

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory() as dtd_dir, tempfile.TemporaryDirectory() as results:
        datamodule = MVTecAD(root=args.root, category=args.category, train_batch_size=args.batch_size,
                             eval_batch_size=args.batch_size, num_workers=0)
        model = Draem(dtd_dir=dtd_dir,
                      pre_processor=Draem.configure_pre_processor(image_size=(args.image_size, args.image_size)),
                      visualizer=False)
        engine = Engine(max_epochs=1, accelerator="cpu", devices=1, logger=False, default_root_dir=results,
                        enable_progress_bar=False)
        engine.fit(model=model, datamodule=datamodule)
        trained = time.perf_counter()
        metrics = engine.test(model=model, datamodule=datamodule, verbose=False)
    done = time.perf_counter()
    print(f"train images {len(datamodule.train_data)}, test images {len(datamodule.test_data)}")
    print(f"import {imported - start:.1f} s, fit (1 epoch) {trained - imported:.1f} s, test {done - trained:.1f} s")
    for name, value in sorted((metrics[0] if metrics else {}).items()):
        print(f"{name}: {float(value):.4f}")


if __name__ == "__main__":
    main()
