"""The routes of each function: one module per function, each exporting ``ROUTES``."""
