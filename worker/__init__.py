"""The program every run pod executes: ``python -m worker <command>`` (script ``autolabel-worker``).

It reads the run's configuration, sets up the database connection and the
Kubernetes channel (`runtime`), and hands the command to its package: ``run`` to
the inference pipeline (`inference`); ``probe``, ``finalize`` and ``discard`` to
the dataset steps (`steps`); the review passes and ``review-agent`` to `review`.
Each one-shot command publishes the contract's verdict for it (`contract.verdicts`).
"""
