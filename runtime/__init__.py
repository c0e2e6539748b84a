"""The training runtime that runs inside every pod (`tandem-train`)."""
