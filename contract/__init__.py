"""The one contract between the controller and the worker, imported by both.

The controller builds these typed objects from an AutoLabelRun's spec and hands
them to the worker's pods (a mounted JSON file, an environment variable); the
worker validates the same models on its side. Every message back, and every key
and label that finds one, is defined here too, and both sides write and read it
with the same model. Nothing here imports the controller or the worker
(import-linter holds it), only pydantic: the review CLI, the controller image and
the worker image all carry it.

- `contract.worker`: the worker configuration (`WorkerConfig`), its enums and the
  suffixes of the fields a run writes;
- `contract.review`: the review configuration (`ReviewConfig`), the decisions and their tags;
- `contract.env`: the worker's commands, the environment variable and file names both sides use;
- `contract.wire`: the base of every message, its bounded values, the labels of the
  ConfigMaps messages travel in;
- `contract.progress`: a shard's progress report (`ProgressReport`) and its tolerant reader;
- `contract.verdicts`: each command's verdict, the probe's `ValidationReason`, the reader;
- `contract.review_stats`: the review numbers a review pass reports;
- `contract.review_agent`: the review agent's request and verdict.
"""
