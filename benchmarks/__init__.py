"""JobQueue's performance harness: ``python -m benchmarks.run [--quick]``."""
