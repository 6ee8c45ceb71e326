"""Where a PACS is and how to talk to it: a DIMSE application entity or a DICOMweb base URL.

Node strings, as typed on the command line:

- ``ORTHANC@127.0.0.1:4242``: DIMSE, called AE title ``ORTHANC`` at host ``127.0.0.1``,
  TCP port 4242 (IPv6 hosts in brackets: ``PACS@[::1]:104``);
- ``http://127.0.0.1:8042/dicom-web``: DICOMweb (QIDO-RS, WADO-RS, STOW-RS) base URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from .errors import PacsInputError

__all__ = ["DEFAULT_CALLING_AET", "PacsNode", "Protocol"]

#: Our own AE title when none is given (the PACS must know it to accept us).
DEFAULT_CALLING_AET = "SELDINGER"
#: Longest AE title (PS3.5 Table 6.2-1, VR AE: 16 characters).
_AET_MAX_CHARS = 16
_NODE_HELP = "Give AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242) or a DICOMweb URL (e.g. http://127.0.0.1:8042/dicom-web)."


class Protocol(StrEnum):
    """How we talk to the PACS."""

    DIMSE = "dimse"
    DICOMWEB = "dicomweb"


def _check_aet(value: str, argument: str) -> None:
    # PS3.5 Table 6.2-1: default repertoire without backslash and control characters;
    # leading and trailing spaces are not significant, so an all-space title is empty.
    if not value.strip() or len(value) > _AET_MAX_CHARS:
        raise PacsInputError(
            f"{argument} must be 1 to {_AET_MAX_CHARS} characters (DICOM AE title); got "
            f"{value!r}. Use the AE title configured on the PACS, e.g. ORTHANC."
        )
    if "\\" in value or any(ord(c) < 32 or ord(c) > 126 for c in value):
        raise PacsInputError(
            f"{argument} may hold printable ASCII characters except backslash (DICOM AE "
            f"title); got {value!r}. Use the AE title configured on the PACS."
        )


@dataclass(frozen=True)
class PacsNode:
    """A PACS: a DIMSE application entity or a DICOMweb service; valid once constructed.

    Build one with :meth:`parse`, :meth:`dimse` or :meth:`dicomweb`.

    Parameters
    ----------
    protocol : Protocol
        DIMSE or DICOMweb.
    host : str
        DIMSE: host name or IP address of the PACS; empty for DICOMweb.
    port : int
        DIMSE: TCP port (1 to 65535); 0 for DICOMweb.
    called_aet : str
        DIMSE: the PACS's AE title; empty for DICOMweb.
    calling_aet : str
        DIMSE: our AE title, as registered on the PACS.
    url : str
        DICOMweb: base URL (``http://`` or ``https://``, no trailing slash); empty for DIMSE.

    Examples
    --------
    >>> node = PacsNode.parse("ORTHANC@127.0.0.1:4242")
    >>> node.protocol, node.host, node.port, node.called_aet, node.calling_aet
    (<Protocol.DIMSE: 'dimse'>, '127.0.0.1', 4242, 'ORTHANC', 'SELDINGER')
    >>> str(PacsNode.parse("http://127.0.0.1:8042/dicom-web/"))
    'http://127.0.0.1:8042/dicom-web'
    """

    protocol: Protocol
    host: str = ""
    port: int = 0
    called_aet: str = ""
    calling_aet: str = DEFAULT_CALLING_AET
    url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", Protocol(self.protocol))
        if self.protocol is Protocol.DIMSE:
            self._check_dimse()
        else:
            self._check_dicomweb()

    def _check_dimse(self) -> None:
        _check_aet(self.called_aet, "called_aet")
        _check_aet(self.calling_aet, "calling_aet")
        if not self.host or any(c.isspace() for c in self.host):
            raise PacsInputError(
                f"host must be a host name or IP address without spaces; got {self.host!r}. "
                + _NODE_HELP
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise PacsInputError(f"port must be an int; got {self.port!r}. " + _NODE_HELP)
        if not 1 <= self.port <= 65535:
            raise PacsInputError(
                f"port must be 1 to 65535; got {self.port}. Use the PACS's DICOM port "
                "(often 104, 4242 or 11112)."
            )
        if self.url:
            raise PacsInputError(f"a DIMSE node has no url; got {self.url!r}.")

    def _check_dicomweb(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsInputError(
                f"url must start with http:// or https:// and name a host; got {self.url!r}. "
                + _NODE_HELP
            )
        if parts.username is not None or parts.password is not None:
            raise PacsInputError(
                f"url must not hold a user name or password (they would show in logs and "
                f"errors); got a URL with credentials for {parts.hostname}. Use a PACS that "
                "answers on loopback or a VPN without authentication."
            )
        if parts.query or parts.fragment:
            raise PacsInputError(
                f"url must be the DICOMweb base URL without ?query or #fragment; got "
                f"{self.url!r}, e.g. http://127.0.0.1:8042/dicom-web."
            )
        if self.url.endswith("/"):
            object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.host or self.port or self.called_aet:
            raise PacsInputError(
                "a DICOMweb node has only a url; host, port and called_aet must be empty."
            )

    @classmethod
    def dimse(
        cls, called_aet: str, host: str, port: int, *, calling_aet: str = DEFAULT_CALLING_AET
    ) -> PacsNode:
        """A DIMSE node (C-ECHO, C-FIND, C-GET, C-STORE)."""
        return cls(
            Protocol.DIMSE, host=host, port=port, called_aet=called_aet, calling_aet=calling_aet
        )

    @classmethod
    def dicomweb(cls, url: str) -> PacsNode:
        """A DICOMweb node (QIDO-RS, WADO-RS, STOW-RS) at base ``url``."""
        return cls(Protocol.DICOMWEB, url=url)

    @classmethod
    def parse(cls, text: str, *, calling_aet: str = DEFAULT_CALLING_AET) -> PacsNode:
        """A node from ``AET@HOST:PORT`` or ``http(s)://…`` (``calling_aet`` is for DIMSE).

        Raises
        ------
        PacsInputError
            If ``text`` is neither form, or a part of it is invalid.
        """
        text = text.strip()
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
            return cls.dicomweb(text)
        match = re.fullmatch(r"(?P<aet>.+)@(?P<host>\[[^\]]+\]|[^:@\[\]]+):(?P<port>\d{1,5})", text)
        if match is None:
            raise PacsInputError(f"cannot read the PACS node {text!r}. " + _NODE_HELP)
        return cls.dimse(
            match["aet"], match["host"].strip("[]"), int(match["port"]), calling_aet=calling_aet
        )

    def __str__(self) -> str:
        if self.protocol is Protocol.DICOMWEB:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.called_aet}@{host}:{self.port}"
