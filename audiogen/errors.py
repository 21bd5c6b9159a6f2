"""User-facing error type: problems a user can fix (bad file, bad option).

The CLI prints these as one line, ``error: <message>``, and exits with code 2; anything
else is a bug and may show a traceback.
"""


class UserError(Exception):
    """An error caused by user input; its message names the file or option and the problem."""
