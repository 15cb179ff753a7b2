"""diffusion-stepper's engine: schedules, models, samplers and training, all Qt-free.

Every algorithm here is a generator that yields one `Frame` per step (see `core.frames`).
The subpackages are families: `diffusion` (the shared maths and the one sampling loop), `mnist`
(part B), `deepfloyd_if` (part A), `io` (trajectory files and exports) and `cli` (one module per
command). Nothing in this package may import Qt or pyqtgraph; `tests/core/test_no_qt.py`
enforces it.
"""

__version__ = "0.1.0"
