"""Running an analysis: one run core (:mod:`.core`: the files, the drive loop, one result shape),
the filters (:mod:`.filters`) and the ways to spread it: one process (:mod:`.local`), ``--jobs 2``
in pure Python (:mod:`.two_stage`: dissect and write in two processes), ``--jobs N`` (:mod:`.jobs`:
workers sharing the sessions; ``--jobs 2`` too with the compiled core) and ``--dask`` (:mod:`.dask`
on a cluster: the analysis split by flows, :mod:`.split`, from a per-file index
:mod:`.flow_index`, a plan :mod:`.flow_plan`, and part files :mod:`.parts`).
"""
