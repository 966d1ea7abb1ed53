"""The dataset steps the controller runs as one-shot Jobs in the run's namespace.

`validate` checks a run against its dataset and model and claims its fields before
any shard starts; `finalize` promotes the approved labels and removes the rest;
`discard` removes everything the run created (`run_values`: the values and fields
it set). Each is safe to run again after a crash, with the same result.
"""
