"""`make demo` / `python -m tools.demo`: the whole Verified Auto-Labeling flow on real images, locally.

`stack` starts and stops the real services (mongod, Triton with `models/`, the
local control plane, the chart's RBAC, the controller, the FiftyOne App);
`runs` holds the three example AutoLabelRuns and turns their status into the
live progress lines and the final summary; `__main__` drives the flow.
"""
