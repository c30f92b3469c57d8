"""One client TLS context per process for every channel that sends (SMTP, IMAP, the messaging
platforms' APIs): building one loads the system CA bundle, which costs milliseconds per send."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, hostname checks on."""
    return ssl.create_default_context()
