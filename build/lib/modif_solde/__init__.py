"""modif-solde : cycle de modification des demandes de solde MSS."""
