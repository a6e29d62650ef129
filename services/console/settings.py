"""Where the console's files are, and where its sign-in may get a token.

    settings = ConsoleSettings.from_env(EnvReader())
    settings.root               # the folder served under /console/
    settings.emulator           # set only on the embedded default (EMULATOR_URL)

Read once, with the gateway's other settings, when the gateway starts.
"""

from __future__ import annotations

import ipaddress
import pathlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.settings import ConfigError, EnvReader

__all__ = ["STATIC_DIR", "ConsoleSettings", "EmulatorTokens"]

# The hand-written pages, scripts and styles; nothing is generated.
STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class EmulatorTokens:
    """The Graph emulator whose token route the console's sign-in may call.

        EmulatorTokens("127.0.0.1", 8443, tls=True, ca_file=pathlib.Path("ca.pem"))

    Only ever the emulator of the embedded default (or a staging cluster):
    against Entra ID, operators paste a token they got from the tenant.
    """

    host: str
    port: int
    tls: bool = True
    # PEM bundle the emulator's certificate is checked against (required with TLS).
    ca_file: pathlib.Path | None = None

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def authority(self) -> str:
        """`host:port` as the emulator sees it in the Host header (it names its issuer by it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, ca_file: str | None) -> EmulatorTokens:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"EMULATOR_URL must be an http(s) URL, got {url!r}")
        if parts.path.strip("/") or parts.query or parts.username:
            raise ConfigError(
                f"EMULATOR_URL must be the emulator's base URL (scheme, host, port), got {url!r}"
            )
        tls = parts.scheme == "https"
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError:
            raise ConfigError(f"EMULATOR_URL has an invalid port: {url!r}") from None
        ca_path = pathlib.Path(ca_file).resolve() if ca_file else None
        if tls and ca_path is None:
            raise ConfigError(
                "EMULATOR_CA_FILE is required with an https EMULATOR_URL "
                "(the PEM of the CA the emulator's certificate is issued by)"
            )
        if ca_path is not None and not ca_path.is_file():
            raise ConfigError(f"EMULATOR_CA_FILE: no file at {ca_path}")
        return cls(host=parts.hostname, port=port, tls=tls, ca_file=ca_path if tls else None)


@dataclass(frozen=True)
class ConsoleSettings:
    """What the gateway needs to serve the console.

    ConsoleSettings(root=STATIC_DIR)                       # pages only
    ConsoleSettings(STATIC_DIR, EmulatorTokens(...))       # plus "get a token"
    """

    root: pathlib.Path = STATIC_DIR
    emulator: EmulatorTokens | None = None

    @classmethod
    def from_env(cls, env: EnvReader) -> ConsoleSettings | None:
        """GATEWAY_CONSOLE_DIR (`off` serves no console), EMULATOR_URL, EMULATOR_CA_FILE."""
        value = env.text("GATEWAY_CONSOLE_DIR", str(STATIC_DIR))
        if value.lower() == "off":
            return None
        root = pathlib.Path(value).resolve()
        if not (root / "index.html").is_file():
            raise ConfigError(
                f"GATEWAY_CONSOLE_DIR: no index.html in {root} (set it to off to serve no console)"
            )
        emulator_url = env.optional("EMULATOR_URL")
        emulator = (
            EmulatorTokens.from_url(emulator_url, env.optional("EMULATOR_CA_FILE"))
            if emulator_url
            else None
        )
        return cls(root=root, emulator=emulator)
