"""A local Kubernetes API for tests and the demo (`tandem local`); a test double, not a product."""
