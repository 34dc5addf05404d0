"""Flying Gnomon from Yamcs (docs/yamcs.md).

- :mod:`ground.yamcs.xtce`: the XTCE 1.2 mission database from the exported dictionary
  (``gnomon dict export --format xtce``);
- :mod:`ground.yamcs.config`: a Yamcs 5.12 configuration from Gnomon's own link
  configuration (``gnomon yamcs config``);
- :mod:`ground.yamcs.server`: starting Yamcs as a separate process and bringing up COP-1
  (``gnomon yamcs run``).

Yamcs is AGPL-3.0 and always runs as its own process; Gnomon talks to it over UDP
(frames) and HTTP (yamcs-client) and links none of its code.
"""
