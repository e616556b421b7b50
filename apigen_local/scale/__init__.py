"""Running the pipeline across a Ray cluster."""
