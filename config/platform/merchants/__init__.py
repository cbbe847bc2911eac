"""Merchants and API keys (Django app label `merchants`). Public face: `services` (merchant_create,
api_key_create, api_key_revoke, hash_api_key), `models` (Merchant, Mode: the tenant every app refers to),
`authentication` (ApiKeyAuthentication, MerchantPrincipal) and `errors`."""
