"""``python -m shipyard``: the same as the ``shipyard`` command."""

import shipyard.cli.main

if __name__ == "__main__":
    shipyard.cli.main.main()
