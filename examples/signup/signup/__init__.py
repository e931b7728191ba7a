"""A small signup site that hands its slow work to roadie (see ../README.md)."""
