"""Logs never hold secrets: every URL in a log line loses its query values and its credentials.

httpx logs each request's full URL at INFO ("HTTP Request: POST https://…?token=…"), and a webhook's
or Open311's secret often rides in the query string (`?token=`, `?api_key=`). The filter rewrites
the message, its arguments and any traceback text before a handler writes them.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>`]+""")
_LOGGERS = ("httpx", "httpcore")  # they log at their own loggers, before any handler sees the record
REDACTED = "***"


def redact_url(url: str) -> str:
    """https://user:pw@host/p?token=x&a=1#f -> https://***@host/p?token=***&a=***"""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return url.split("?", 1)[0] + ("?" + REDACTED if "?" in url else "")
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{pair.split('=', 1)[0]}={REDACTED}" for pair in parts.query.split("&") if pair)
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact(text: str) -> str:
    """Every URL in `text`, redacted."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """Redact on every handler of the root logger, and at httpx's and httpcore's own loggers."""
    redactor = RedactFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(redactor)
