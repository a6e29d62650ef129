"""The profile extender: the only Microsoft Graph client of profile-sync."""
