"""Development tools kept out of the shipped package (`make captures`)."""
