"""The machinery behind ``evaluators.evaluate_many``: K members merged into one network with stacked weights
(``model``, ``stacked``, ``link``), their optimizers (``optim``), the training loop (``train``) with its gathered
batches (``batches``) and batch sizing (``sizing``). Users call ``evaluate_many``; nothing here is needed to use it.
"""
