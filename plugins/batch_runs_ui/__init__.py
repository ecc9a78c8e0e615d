"""The Batch runs page: its app, its reads of the warehouse and its static files (see ``batch_runs_page``)."""
