"""Package data: bundled MNIST checkpoints (models/), sample images and icons."""
