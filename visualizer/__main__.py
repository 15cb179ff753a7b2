import sys

from diffusion_stepper.visualizer.launcher import main

sys.exit(main())
