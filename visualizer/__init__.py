"""diffusion-stepper's desktop app: PySide6 + pyqtgraph views over the Qt-free `core` engine."""
