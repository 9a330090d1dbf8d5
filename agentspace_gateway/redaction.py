"""Last line of defence: secret values the process has handled never leave it through logging.

The vault registers every key and token it reads or writes; the log filter installed by
``install_log_redaction`` replaces any registered value in a record with ``[REDACTED]``.
Nothing should try to log a secret in the first place; this catches the mistake if it does.
"""

import logging
import threading

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    # Very short values would redact ordinary words; real keys and tokens are long.
    if len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        known = tuple(_secrets)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(handler: logging.Handler) -> None:
    if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
        handler.addFilter(SecretRedactingFilter())
