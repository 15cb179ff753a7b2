"""The docks beside the views: Sample (part B models) and DeepFloyd IF (part A)."""
