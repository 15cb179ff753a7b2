"""The views in the window's tabs (Step, Compare, Train) and the runs list, each a view over the session."""
