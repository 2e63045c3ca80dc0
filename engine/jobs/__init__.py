"""A job document's way in and out: YAML workflow files (``loader``, ``yaml_reader``),
creation-time validation (``validation``), the rows the store inserts (``submission``) and the
documents the API returns (``views``)."""
