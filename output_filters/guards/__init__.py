"""The guards: what the filter puts into pandas and matplotlib, and the register of every replacement."""
