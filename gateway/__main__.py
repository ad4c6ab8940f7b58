"""`python -m gateway` is the `consulta` command."""

from gateway.cli import main

main()
