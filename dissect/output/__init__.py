"""Rows out: table writers (CSV, JSON lines, Parquet, in memory: :mod:`.writers`), summary.json
(:mod:`.summary`, with its bounded statistics in :mod:`.distribution` and the anomaly tags in
:mod:`.anomalies`) and the pandas adapter (:mod:`.tables`)."""
