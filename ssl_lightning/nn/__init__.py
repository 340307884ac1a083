"""Small building blocks with no Lightning dependency, one purpose per module: attention, the BEATs/WavLM
Transformer, relative and convolutional position embeddings, maskers (patch, span, block, token), the EMA
teacher, the vector quantizer and k-means, fake quantization (Contrastive Quant), optimizers and LR
schedules, pooling, DABS input specs, distributed helpers, and the self-supervised losses (`nn.losses`).

Import from the modules themselves (`from ssl_lightning.nn.ema import EMATeacher`): this package imports
nothing, so importing one block does not import the others.
"""
