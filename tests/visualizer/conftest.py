import os

# Tests run without a display; this must be set before Qt starts.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
