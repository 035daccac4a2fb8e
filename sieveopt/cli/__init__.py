"""Command-line interface: ``sieveopt <command>``; one module per command group."""
