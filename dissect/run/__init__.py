"""Running an analysis: one run core (:mod:`.core`: the files, the drive loop, one result shape),
the filters (:mod:`.filters`) and the ways to spread it: one process (:mod:`.local`), ``--jobs 2``
(:mod:`.two_stage`: dissect and write in two processes), ``--jobs N`` (:mod:`.jobs`: workers
sharing the sessions) and ``--dask`` (:mod:`.dask`: one task per file on a cluster).
"""
