"""The web face: a page to search, browse, correct and remove memories, served by the same process.

Server-rendered HTML that reads without JavaScript; every asset ships in this package; every memory field is
escaped by the templates; mutating requests need a CSRF token and a same-origin Origin (see security.py).
"""
