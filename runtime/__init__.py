"""What every pod program uses: database durability, the Kubernetes channel, redaction, object storage.

`durable` (write concern, bounded retries), `kube` (verdicts and the result
ConfigMaps), `reporters` (progress snapshots), `redact` (credentials kept out of
output), `storage` (S3 and HTTP objects) and `masks` (mask files), `claims` (which
run owns which field), `view_guard` (saved views loaded safely), `run_record` (the
run's summary in its dataset) and `errors`.
"""
