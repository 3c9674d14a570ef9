"""Every model of the package, imported once so each registers itself.

Add a line here for a new model module; :func:`maphc2f_data.models.factory.create_model`
and checkpoint loading then know its names.
"""

from maphc2f_data.models import sqe  # noqa: F401
from maphc2f_data.models.draem import torch_model as draem  # noqa: F401
from maphc2f_data.models.npcf import torch_model as npcf  # noqa: F401
from maphc2f_data.models.npcfpp import torch_model as npcfpp  # noqa: F401
