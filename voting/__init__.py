"""The voting rules of a consultation, in plain Python.

This package imports nothing but the standard library, so every rule (the window, eligibility,
one person one vote, the re-vote policy, the tally) can be read and tested without a database,
a queue or a web framework. The gateway and the workers call into it; it never calls out.
"""
