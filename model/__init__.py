"""The attentive Siamese re-identification network, its losses and checkpoints."""

# Must run before anything imports torchvision; see the module's docstring.
from model import _torchvision_compat as _torchvision_compat
