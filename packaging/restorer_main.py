"""Entry point of the frozen app (PyInstaller runs this as __main__).

The same as ``python -m restorer``: no arguments opens the desktop app, subcommands and
``--self-test`` work as usual. ``freeze_support`` lets multiprocessing children (e.g. the data
loader's workers where the start method is spawn: Windows, macOS) run inside the bundle.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from restorer.cli import main

    sys.exit(main())
