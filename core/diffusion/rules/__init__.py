"""Step rules: how a sampler walks from one level of noise to the next, one module per kind of
model (ε-prediction, flow matching, the single-step denoiser) on shared x̂₀ handling, and the
catalogue that names them. Every rule is a step rule for `run_sampler` (core.diffusion.sampling),
so the one loop drives them all and each frame carries the rule's own x̂₀, noise estimate,
numbers and update."""
