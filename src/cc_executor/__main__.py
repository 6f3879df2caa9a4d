"""``python -m cc_executor``: the same entry as the ``cc-executor`` console script."""

from cc_executor.cli.daemon_entry import main

main()
