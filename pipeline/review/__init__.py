"""`narrate review`: a local proofing page over a job's outputs (see README)."""
