"""The Tandem operator: pydantic API models, a pure reconcile core and a thin kopf shell.

Never imports torch (the operator image has none) nor `tandem.localcluster` (the operator
only ever sees a Kubernetes API over HTTP).
"""
