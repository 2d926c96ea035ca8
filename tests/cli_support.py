"""Helpers shared by the command-line tests: run main() in-process, check a user error."""

from cc_numpy.__main__ import main


def run_cli(argv, capsys):
    """main(argv) in-process; returns (exit code, stdout, stderr), argparse's SystemExit included."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, message):
    """Exit status 2, exactly one line, starting with 'error:' and naming ``message``, and no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def end_this_process(results_by_key, code):
    """A run_jobs follow-up that ends its worker at once (as the system's out-of-memory killer would)."""
    import os

    os._exit(code)
