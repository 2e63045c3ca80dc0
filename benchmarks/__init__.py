"""JobQueue's performance harness (SPEC section 9): ``python -m benchmarks.run [--quick]``."""
