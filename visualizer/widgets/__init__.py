"""Reusable widgets: image panels, the equation panel, plots, the timeline and form helpers."""
