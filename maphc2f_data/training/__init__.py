"""Training procedures (kept apart from the modules in :mod:`maphc2f_data.models`)."""
