"""diffusion-stepper's engine: schedules, models, samplers and training, all Qt-free.

Every algorithm here is a generator that yields one `Frame` per step (see `core.frames`).
The subpackages are families: `diffusion` (the shared maths and the one sampling loop), `mnist`
(part B), `deepfloyd_if` (part A), `io` (trajectory files and exports) and `cli` (one module per
command). Nothing in this package may import Qt or pyqtgraph; `tests/core/test_no_qt.py`
enforces it.
"""

import os

__version__ = "0.1.0"
PROG = "diffusion-stepper"  # the console script, as messages name it

# On Apple's GPU (MPS), an operation MPS lacks runs on the CPU instead of failing. torch reads this
# when it first loads, and every module of the app that uses torch imports this package first.
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
