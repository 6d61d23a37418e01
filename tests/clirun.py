"""Run the CLI in-process, as the command-line tests do: (exit code, stdout, stderr)."""

from __future__ import annotations

from lstmae.cli.app import main


def run(capsys, *args: object) -> tuple[int, str, str]:
    """``lstmae ARGS...`` through `lstmae.cli.app.main`, with pytest's ``capsys`` capturing its output."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
