"""The one error type a user sees as a single line (the CLI and the stages catch it)."""


class UserError(ValueError):
    """Bad input or an unrecoverable fault the user can fix; its message is one line."""
