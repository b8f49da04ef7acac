"""The study: its file (schema and parsing), creating and validating it before anything is stored."""
