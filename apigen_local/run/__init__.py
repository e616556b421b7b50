"""Running a dataset: configuration, the generate and verify pipelines, run files, stats and progress."""
