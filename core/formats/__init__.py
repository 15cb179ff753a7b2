"""Files in their formats, below the families that write them: the trajectory file (a run), the
safetensors weights beside a JSON sidecar, PNG and CSV charts, and the pixel helpers and colours
every picture shares."""
