"""The inference pipeline: one shard's samples read from FiftyOne, decoded, inferred by Triton, written back.

One shard of an ``AutoLabelRun`` (the Indexed Job's ``JOB_COMPLETION_INDEX``):
`shard.run_shard` reads the shard's target samples (`reader`, `partition`), decodes
them (`decode`, `decode_stage`), batches them through Triton (`triton_client`,
`preflight`, `adapters`, `two_stage`) and writes predictions, markers and embeddings
into the run's staging field (`writer`, `documents`), counting progress (`progress`).
It imports only `contract` and `runtime`: never the dataset steps, review or the controller.
The pod's entry point is `worker` (``python -m worker run --config FILE``).
"""
