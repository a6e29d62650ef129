"""What a failed profile read means: the user has no SharePoint profile, or try again.

    reason = no_profile_reason(400, item_body)   # "no SharePoint Online licence (...)" or None

Reading SharePoint-backed properties (`aboutMe`, `skills`, ...) of an account
SharePoint keeps no profile for fails, and keeps failing: that is a state of
the account, recognised on the first answer and never retried. Microsoft
documents no error for it; these are the answers reported in its trackers:

- "Tenant does not have a SPO license." (400 BadRequest), for users without a
  SharePoint Online licence:
  https://github.com/microsoftgraph/microsoft-graph-docs/issues/4233
- "Unable to retrieve user's mysite URL." (UnknownError or BadRequest), for
  users whose personal site was never provisioned:
  https://github.com/microsoftgraph/microsoft-graph-docs/issues/11344,
  https://github.com/Azure-Samples/ms-identity-python-daemon/issues/18

SharePoint's own transient refusal, `Microsoft.SharePoint.SPException` "Cannot
complete this action. Please try again." (msgraph-sdk-dotnet issue 580), is
not one of them: it is retried like any 5xx. The messages are matched, not the
status or code, because the reports show them with more than one of each.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["no_profile_reason"]

# Lower-cased message fragment -> what the run record and events say.
_PERMANENT: Final = (
    ("does not have a spo license", "no SharePoint Online licence"),
    ("unable to retrieve user's mysite url", "no personal site provisioned"),
)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or "")
    return ""


def no_profile_reason(status: int, body: Any) -> str | None:
    """Why Graph says this user has no SharePoint profile, or None when the answer is
    anything else (a profile, a transient failure, another error)."""
    if status < 400 or status == 429:
        return None
    message = _message(body)
    lowered = message.lower()
    for fragment, reason in _PERMANENT:
        if fragment in lowered:
            return f"{reason} (HTTP {status}: {message.strip()})"
    return None
