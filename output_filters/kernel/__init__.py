"""The kernel side: the IPython extension, the output gate and its seal, the tamper watch, events."""
