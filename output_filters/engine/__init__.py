"""The count engine: tables as linear systems, the attacker's LPs, optimal cell suppression, the ledger."""
