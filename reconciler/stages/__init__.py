"""What the DVC pipeline's stages run: ``python -m reconciler.stages {prepare,train,evaluate}``.

Each stage reads the flywheel's generated ``pipelines/<name>/params.yaml`` and writes only under
``pipelines/<name>/out/``, so ``dvc repro`` by hand does exactly what the reconciler does.
"""
