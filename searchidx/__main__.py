"""``python -m searchidx``: the ``searchidx`` command (:func:`searchidx.cli.main`)."""

from searchidx.cli import main

main()
