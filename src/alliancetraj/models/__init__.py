"""One module per classification method (registered in :mod:`alliancetraj.methods`); the
change-point model they share is :mod:`alliancetraj.models.changepoint`."""
