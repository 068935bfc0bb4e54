import sys

from tfdistil.cli import main

sys.exit(main())
