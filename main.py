"""Start SAM Studio's desktop app: `python main.py [PROJECT_OR_FOLDER]`."""

import sys

from samstudio.ui.app import main

if __name__ == "__main__":
    sys.exit(main())
