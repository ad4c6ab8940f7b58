"""Consulta's HTTP edge, its settings, its store and its command line."""
