"""One module per resource; each route is a thin call into `deputy.services`."""
