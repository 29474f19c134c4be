"""The stages, one module each, one signature: `run(spec, params)`. They know a model only through
its ModelSpec and the stage modules of its folder; nothing here imports seqpipe.pipelines."""
