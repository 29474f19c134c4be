"""Data preparation helpers shared by the models' preprocess stages."""
