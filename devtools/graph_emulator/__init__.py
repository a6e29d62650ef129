"""In-memory stand-in for Microsoft Graph v1.0 and the Entra ID v2 token endpoint.

Served over HTTPS with a generated certificate so MSAL and httpx can talk to it exactly as
they would to ``login.microsoftonline.com`` and ``graph.microsoft.com``.
"""
