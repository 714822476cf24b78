"""BigQuery for the data-analyst agent: read-only SQL, checked before it runs."""
