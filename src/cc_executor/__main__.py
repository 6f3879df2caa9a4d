import sys

from cc_executor.cli.daemon_entry import run_foreground

_code = run_foreground(sys.argv[1:])
if _code is not None:
    sys.exit(_code)

from cc_executor.cli.main import app  # noqa: E402 (the daemon path above must not import it)

app(prog_name="cc-executor")
