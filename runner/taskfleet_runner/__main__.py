import sys

from taskfleet.cli import main

sys.exit(main(["runner", *sys.argv[1:]]))
