"""The exception tree. Everything c2c raises on purpose derives from C2CError; the HTTP edge
translates these into codes once."""


class C2CError(Exception):
    """Root of every error c2c raises on purpose."""


class ConfigError(C2CError):
    """A setting is missing or malformed; the message names the variable."""


class StoreError(C2CError):
    """The store is unreachable or a query failed for reasons outside the request."""


class SwitchError(C2CError):
    """Talking to a FreeSWITCH failed."""


class SwitchUnavailable(SwitchError):
    """No connection to the switch (not connected, reconnecting, or failed)."""


class CommandTimeout(SwitchError):
    """A command sent to the switch got no reply in time."""


class ReplyLost(CommandTimeout):
    """The command was sent but the connection closed before its reply: it may have run."""


class CommandFailed(SwitchError):
    """The switch answered a command with -ERR."""


class RequestRejected(C2CError):
    """A click-to-call request failed one of the checks; carries the public code (1-11)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
