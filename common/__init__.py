"""The ground floor every app stands on: the error vocabulary, the API's error schema and who may act.

Nothing here imports an app or the project package; every app may import it.
"""
