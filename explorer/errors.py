"""User-facing errors: the CLI prints their message (no traceback) and exits with status 2."""


class UserError(Exception):
    """Bad input or a missing prerequisite that the user can fix; the message says how."""
