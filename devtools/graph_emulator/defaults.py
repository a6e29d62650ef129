"""Fixed defaults of the emulator, importable by the services, tests and the demo.

The tenant id, client id and secret below are not secrets: they only unlock the local
emulator. Any caller that starts the emulator with other values must pass the same ones to
the services.
"""

from __future__ import annotations

from typing import Final

#: Directory (tenant) id of the generated tenant.
DEFAULT_TENANT_ID: Final = "5d2f8f4e-6f1c-4b7a-9a37-2b8c3e1d0a11"
#: Application (client) id of the profile-sync app registration.
DEFAULT_CLIENT_ID: Final = "8a1c7b42-3e5d-4f60-b9a2-6c4d1e7f9b03"
#: Client secret of that app registration.
# Deliberately public: it only opens the local emulator.
DEFAULT_CLIENT_SECRET: Final = "emulator-secret-Q7~x3kP9vL2mN8rT"  # noqa: S105
#: Verified domain of the generated tenant; user principal names end with it.
DEFAULT_TENANT_DOMAIN: Final = "contoso.onmicrosoft.com"

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8443
DEFAULT_USERS: Final = 50
DEFAULT_SEED: Final = 1
DEFAULT_STATE_DIR: Final = ".state/graph_emulator"

#: Password of every emulated user for the resource-owner password grant (``--user-password``).
# Deliberately public: it only signs in to the local emulator.
DEFAULT_USER_PASSWORD: Final = "Emulated-P@ssw0rd!"  # noqa: S105
#: App roles the profile-sync app's own client-credentials tokens carry (``--app-roles``).
DEFAULT_APP_ROLES: Final = ("Profiles.Read", "Profiles.Sync")
#: Application permissions to Microsoft Graph granted to the app (admin-consented).
DEFAULT_GRAPH_APP_ROLES: Final = ("User.Read.All",)

#: Resource URI and well-known application id of Microsoft Graph; both are valid audiences.
GRAPH_RESOURCE: Final = "https://graph.microsoft.com"
GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"


def app_id_uri(client_id: str) -> str:
    """The application id URI Entra assigns by default when an app exposes an API."""
    return f"api://{client_id}"
