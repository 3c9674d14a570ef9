"""Image sources: MVTec AD, VisA, BTAD, a plain folder and the built-in demo.

All behind one small interface (:class:`Source`); :func:`get_source` picks
one by name. Nothing here imports torch or ray: listing uses ``os.scandir``
and decoding Pillow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from maphc2f_data.errors import UserError
from maphc2f_data.sources.base import SOURCES, Source, SourceImage, register_source

# Registration side effects: each module adds its class to SOURCES.
from maphc2f_data.sources import btad, demo, folder, mvtec, visa  # noqa: E402,F401


def get_source(name: str, root: Optional[Union[str, Path]] = None, *,
               demo_train_count: Optional[int] = None) -> Source:
    """The source called ``name``, reading ``root``.

    Parameters
    ----------
    name : str
        One of :data:`SOURCES` ("btad", "demo", "folder", "mvtec", "visa").
    root : str or pathlib.Path, optional
        Dataset root; required by every source but the demo.
    demo_train_count : int, optional
        Demo only: normal training renders per category
        (``DemoSource(train_count=...)``; None: the demo's default, 8).

    Returns
    -------
    Source
        A reader whose root has been checked to have the expected layout.

    Raises
    ------
    UserError
        ``name`` is not a source (the message lists the valid names), or
        ``demo_train_count`` is given for another source or out of range.
    SourceLayoutError
        ``root`` is missing, does not exist, or has the wrong layout (the
        message names the path and the expected layout).
    """
    try:
        cls = SOURCES[name]
    except KeyError:
        raise UserError(f"unknown source {name!r}; valid: {', '.join(sorted(SOURCES))}") from None
    if demo_train_count is not None:
        if name != "demo":
            raise UserError(f"--demo-train-count is for the demo source only, not {name!r}")
        return cls(root, train_count=demo_train_count)
    source = cls(root) if root is not None else cls()
    if source.needs_root:
        source.check_root()
    return source


__all__ = ["SOURCES", "Source", "SourceImage", "get_source", "register_source"]
