"""What the DVC pipeline's stages run: ``python -m reconciler.stages {prepare,train,evaluate}``.

Each stage reads the flywheel's generated ``pipelines/<name>/params.yaml`` and writes only under
``pipelines/<name>/out/``, so ``dvc repro`` by hand does exactly what the reconciler does.

Each stage's ``run(params_file)`` is a thin file wrapper: it reads the params and the inputs,
calls the stage's pure computation (``train.compute``, ``evaluate.compute``,
``prepare.summarize``: values in, values out, no file touched, no repository needed) and writes
the outputs. A worker without a checkout can run the computations alone.
"""
