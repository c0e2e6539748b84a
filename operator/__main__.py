"""`python -m tandem.operator` is `tandem operator`."""

import sys

from tandem.cli import main

sys.exit(main(["operator", *sys.argv[1:]]))
