"""The autolabel-operator controller: a kopf operator that turns AutoLabelRun resources into GPU Jobs.

`controller.api` holds the AutoLabelRun API (the single source of truth for the CRD);
`controller.crdgen` renders that API into the CRD YAML checked in under `crds/`.
"""
