"""The catalogue at any size: search, orders on indexes, pages at any depth.

Read by clips.selectors (search) and by the API, the listener's pages and the admin
(pages). docs/catalogue.md says how it works and what it costs.
"""
