"""CS180 part B: MNIST data, the course UNet, checkpoints, training, sampling and the
part B experiments."""
