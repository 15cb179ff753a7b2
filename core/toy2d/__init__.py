"""The 2D lab: toy distributions in the plane, the exact field of Gaussian mixtures, and the small
models that learn them, on the same objectives, step rules and frames as MNIST and IF."""
