"""``python -m searchidx``: the ``searchidx`` command (:func:`searchidx.console.main`)."""

from searchidx.console import main

main()
