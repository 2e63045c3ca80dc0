"""Access control: API keys (:mod:`.keys`), the key ring that authenticates a bearer key
(:mod:`.keyring`). The tables and their writes live in ``engine.store.keys`` and
``engine.store.audit``."""
