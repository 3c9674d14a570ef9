"""maphc2f-data: build the MaPhC2F synthetic anomaly dataset."""

__version__ = "0.1.0"


def __getattr__(name):
    """Import ``load`` lazily: it pulls in ``datasets``, which most users of the
    synthesis core never need."""
    if name == "load":
        from maphc2f_data.dataset.load import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
