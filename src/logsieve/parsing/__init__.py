"""Raw log lines -> events -> sessions: line reading with counted rejects, known templates, mining, sessionizing."""
