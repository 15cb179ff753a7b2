"""A user's own model: any PyTorch model or callable (`ds.sample`), a student's own sampling loop
(the recorder), and any diffusers DDPM/DDIM folder (`sample diffusers`)."""
