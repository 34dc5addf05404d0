"""Monte Carlo campaigns on Dask: ``gnomon campaign run SPEC.toml --out DIR`` and
``gnomon campaign report DIR`` (docs/campaigns.md).

The modules, in the order the data flows:

- :mod:`.spec`: the spec file's schema and the runs it makes (each with a stable id);
- :mod:`.runs`: one run as a worker runs it (SITL, scheduler evaluation, SEU campaign,
  constellation), its headline figures and the command that replays it;
- :mod:`.engine`: the runs as Dask tasks on a local or remote cluster, results recorded
  as they arrive, finished runs skipped on a re-run;
- :mod:`.store`: the results table (SQLite);
- :mod:`.report`: the HTML report (distributions, worst runs, the constellation curve).

Import from the modules; this package re-exports nothing.
"""
