"""Print `.env.example` from `Settings`: every setting, its description and its default.

Run `python scripts/gen_env_example.py > .env.example`; tests/test_config.py checks it is current.
The text comes from `cc_executor.cli.envfile`, which `cc-executor init` uses as well.
"""

from __future__ import annotations

import sys

from cc_executor.cli.envfile import render

__all__ = ["render"]

if __name__ == "__main__":
    sys.stdout.write(render())
