"""Clients for the live annotation tools kpdeliver drives (push work out, pull finished work
back into the batch). Talks to the tool over its API; never imports Prefect or GX."""
