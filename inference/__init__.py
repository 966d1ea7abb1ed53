"""The autolabel inference worker: FiftyOne samples -> Triton -> predictions in a FiftyOne staging field.

One worker process handles one shard of an ``AutoLabelRun`` (the Indexed Job's
``JOB_COMPLETION_INDEX``). Entry point: ``python -m inference run --config FILE``.
This package never imports the controller; the two share only the `contract`
package: the JSON config (``contract.worker.WorkerConfig``) and every message between
them (progress reports, step verdicts, review requests and verdicts).
"""
