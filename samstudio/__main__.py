import sys

from samstudio.cli.main import main

sys.exit(main())
