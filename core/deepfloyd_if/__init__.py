"""CS180 part A: DeepFloyd IF through diffusers. Loading the stages, prompt embeddings, images
and masks, the part A algorithms as stepped runs, and the part A experiments."""
