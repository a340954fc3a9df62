"""What stops a transmission: a transient failure (retried, with a new transfer) or a permanent one."""

from __future__ import annotations

from reporting.errors import PermanentError, ReportingError


class TransmissionError(ReportingError):
    """A message could not be transmitted, or its answer not fetched."""


class TransientTransmissionError(TransmissionError):
    """The authority's server failed or did not answer (5xx, 429, a timeout, a broken connection):
    trying again later may work. A transfer that failed so was aborted; a retry starts a new one."""


class PermanentTransmissionError(TransmissionError, PermanentError):
    """The authority refused the request (a 4xx other than 401 once and 429): the file, the
    credentials or the configuration must be fixed first; retrying the same changes nothing."""


class SignatureError(TransmissionError, PermanentError):
    """A DIP document could not be signed, or a signature does not verify."""


class CredentialsError(TransmissionError, PermanentError):
    """The DIP client id, key or certificate is missing or unusable."""
