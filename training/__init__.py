"""Training and evaluation of the re-identification network."""
