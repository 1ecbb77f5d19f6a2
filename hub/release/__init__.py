"""Release review (principle 4): nothing leaves the consortium without every member's review.

``states`` holds the request's state machine as data; ``recheck`` runs the disclosure rules
and the neutral labels over the files; ``desk`` is the one place requests move (check,
write, audit); ``service`` is the reviewers' web page, a JupyterHub service.
"""
