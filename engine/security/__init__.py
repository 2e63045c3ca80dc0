"""Access control: API keys and principals (:mod:`.keys`), the key ring that authenticates a
bearer key (:mod:`.keyring`), keys and the audit log as the Engine offers them (:mod:`.access`).
The tables and their writes live in ``engine.store.keys`` and ``engine.store.audit``."""
