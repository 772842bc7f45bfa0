"""Application protocols, one package each."""
