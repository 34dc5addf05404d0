"""Gnomon's command-line entry point: one `gnomon` command over the four packages.

`fsw` (flight), `ground`, `hil` (bench and simulation) and `models` each own their
subcommands; this package only assembles them.
"""
