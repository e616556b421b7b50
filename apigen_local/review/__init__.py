"""Human review of a run (``apigen-local review DIR``): a local page to label a seeded sample of
rows, the labels log (``DIR/labels.jsonl``), and the precision those labels measure.

``labels`` keeps the log, ``rows`` picks and describes the sample, ``precision`` turns labels into
figures, ``session`` holds one review's state, ``server`` is its HTTP face on 127.0.0.1 and
``serve`` runs it for the CLI; the page itself is in ``static/``.
"""
