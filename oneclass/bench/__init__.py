"""The benchmark harness, split as anomalib splits its pipeline.

:mod:`.suite` (the YAML format, checked up front; :mod:`.schema` its checks, :mod:`.specs` the
embedder/detector specs), :mod:`.protocols` (a registry, one module per protocol, each declaring
its suite keys and what the report shows), :mod:`.job` (one cell: fit, score, measure, through
:mod:`oneclass.embed.aggregate`), :mod:`.runner` (schedules and resumes), :mod:`.results` (the run
folder), and the services protocols plan with: :mod:`.context`, :mod:`.embeddings`,
:mod:`.prefetch`, :mod:`.audit`, :mod:`.provenance`, :mod:`.wild`.
"""
