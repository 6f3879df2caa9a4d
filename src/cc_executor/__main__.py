from cc_executor.cli.main import app

app(prog_name="cc-executor")
