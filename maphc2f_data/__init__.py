"""maphc2f-data: build the MaPhC2F synthetic anomaly dataset."""

__version__ = "0.1.0"
