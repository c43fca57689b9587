"""Training of the small demo SAM with the paper's recipe (needs torch)."""
