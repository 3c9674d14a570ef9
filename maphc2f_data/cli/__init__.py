"""Command-line interface: ``maphc2f <command>`` and the ``maphc2f-build`` alias."""
