"""USSD: a menu on any feature phone, driven by one state machine for every aggregator."""
