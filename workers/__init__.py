"""RQ jobs: inbound messages become counted votes, and replies leave through the provider."""
