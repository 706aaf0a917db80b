"""I/O at the edges: each module owns one outside thing (YAML spec files, dataset files, the lake,
generated pipelines, DVC, git, locks and atomic writes, child processes) and turns its failures
into the error tree. Adapters never import the engine, the stages or a face."""
