"""Every query and business rule; called by the API and by the activities alike."""
