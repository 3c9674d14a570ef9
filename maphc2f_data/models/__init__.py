"""Torch models (the only subpackage that imports torch).

Import the submodules directly (``from maphc2f_data.models import sam``); this
package itself imports nothing, so importing it stays cheap.
"""
