"""Dialogs: the export options, crop to a square, and the mask and sketch editors."""
