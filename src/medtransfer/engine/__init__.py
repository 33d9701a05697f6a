"""One trial, end to end: read and split the data, build the network for a strategy, train it, test it and
calibrate it. ``medtransfer train`` runs one trial; a study runs many, through the same code."""
