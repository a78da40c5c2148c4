"""``python -m c2c.fakeswitch --listen 127.0.0.1:0 ...``: see c2c/fakeswitch/runner.py."""

import sys

from c2c.fakeswitch.runner import main

if __name__ == "__main__":
    sys.exit(main())
