"""Sample client platforms Deputy's agents are tested against (not part of the `deputy` package)."""
