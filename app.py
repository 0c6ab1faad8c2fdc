"""The SEVLM web app, where Hugging Face Spaces look for it: `python app.py --help` (the same as `sevlm-app`)."""

import sys

from sevlm.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
