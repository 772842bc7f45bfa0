"""Rows out: table writers (CSV, JSON lines, Parquet, in memory: :mod:`.writers`), summary.json
(:mod:`.summary`) and the pandas adapter (:mod:`.tables`)."""
