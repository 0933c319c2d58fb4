"""Search and command-line tools of gp-backprop (``python -m gp_backprop.evaluate``)."""
