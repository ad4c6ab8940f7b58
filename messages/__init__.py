"""Everything the voter reads, and the way it leaves the gateway."""
