"""One package per model: params sections, preprocess, evaluation and predict for that model.

Each package is split by stage so dvc.yaml can depend on exactly the module a stage runs.
"""
