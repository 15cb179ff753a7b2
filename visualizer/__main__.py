import sys

from visualizer.launcher import main

sys.exit(main())
