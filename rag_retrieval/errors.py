"""Errors a user can act on. Each message names the file and line, or the config key, and the valid
choices; the CLI prints it in one line instead of a traceback. Ground floor: imports nothing."""


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the valid values."""


class DataError(ValueError):
    """Malformed input; the message lists each bad record as ``file:line: key: problem``."""
