"""The diffusion maths every model family shares: schedules, objectives, the one sampling loop
and its pieces, what theory says a frame should look like, and the update rule as text."""
