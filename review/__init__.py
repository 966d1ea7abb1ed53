"""Review on the dataset side: decision tags and rules, statistics, quality, review aids, auto-approval.

`decisions` holds the decision tags, rule application and review statistics;
`quality` scores predictions against a ground-truth field; `aids` creates the saved
views and embeddings visualization; `calibration` and `auto_approve` vouch for
labels within a promised precision; `agent` is the per-namespace review agent,
woken by its request ConfigMaps and the database's change feed (`change_feed`).
"""
