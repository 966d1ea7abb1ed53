"""The one contract between the controller and the worker, imported by both.

The controller builds these typed objects from an AutoLabelRun's spec and hands
them to the worker's pods (a mounted JSON file, an environment variable); the
worker validates the same models on its side. Nothing here imports the
controller or the worker (import-linter holds it), only pydantic: the review
CLI, the controller image and the worker image all carry it.

- `contract.worker`: the worker configuration (`WorkerConfig`), its enums and the
  suffixes of the fields a run writes;
- `contract.review`: the review configuration (`ReviewConfig`) and the decision tags;
- `contract.env`: the environment variable and file names both sides use.
"""
