"""The `deputy` command line (typer + rich); the Typer app is `deputy.cli.main.app`."""
