"""The built-in demo source (being split into modules; see :mod:`.scenes`)."""

from maphc2f_data.sources.demo.scenes import *  # noqa: F401,F403
from maphc2f_data.sources.demo.scenes import _render_normal  # noqa: F401
