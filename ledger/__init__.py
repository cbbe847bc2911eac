"""Double-entry ledger: accounts, immutable ledger transactions and their entries, two-phase pending
transactions, stored (sharded) balances, a SHA-256 hash chain and `ledger_verify` (docs/ledger.md).

The ledger knows nothing about payments or merchants: owners and references are opaque strings chosen by the
caller (`merchant:mer_…`, `payment:pay_…`). Other apps use it only through its public face:
`ledger.services` (postings, accounts), `ledger.sealing` (hash chain, verification runs), `ledger.selectors`
(reads) and `ledger.money` (amounts, currencies), with the plain data types of `ledger.contracts` going both ways
(never a model) and the exceptions of `ledger.errors`. The other modules are internal. It imports no other
Clearhouse app.
"""
