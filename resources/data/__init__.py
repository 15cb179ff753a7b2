"""Package data: the ten MNIST test digits the experiments use when MNIST itself is absent."""
