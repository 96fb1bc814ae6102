"""Getting sessions: loading any --data into the session table, fetching public data, splits, data analysis."""
