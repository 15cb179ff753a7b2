"""Files a run leaves behind: the trajectory file, and exports (GIF, MP4, PNG)."""
