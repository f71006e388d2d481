"""Building blocks of bench/run.py and bench/foundation.py: workloads, server
definitions, load generators, process statistics, the report and its plots."""
