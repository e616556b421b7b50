"""Where a job's batches run, all through the one loop of ``base.py``: in this process
(``local.py``, the default), on a Ray cluster (``ray.py``), or on a worker object of your own
(``memory.py``, for testing what you build on the run loop)."""
