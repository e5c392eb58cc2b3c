"""One module per classification method; see :data:`alliancetraj.classify.METHODS`."""
