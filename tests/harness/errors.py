"""The harness's exception."""


class HarnessError(RuntimeError):
    """The mail server could not do what a test asked; the message says where its logs are
    when they help."""
