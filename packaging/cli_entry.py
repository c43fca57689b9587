"""The desktop build's command-line program (`samstudio` beside the app)."""

import sys

from samstudio.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
