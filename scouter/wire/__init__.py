"""Every wire shape of both client versions, each declared once as a msgspec struct that decodes, encodes and
documents it (the HTTP layer feeds the structs to quart-schema for the OpenAPI document).

`common` holds the shared field types and the one place msgspec's errors are worded the house way; `timestamps`
the ``created_at`` parsing and bounds; `v064_records` the 0.6.4 ServerRecords message; `v064` the 0.6.4 queries and
answers; `v064_accounts` authentication and users; `v064_profiles` the profile documents; `v025` what scouter-ml
0.25 added.
"""
