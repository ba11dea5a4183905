"""Every wire shape of both client versions, each declared once as a msgspec struct (see `scouter.wire.common`).

`v064_records` holds the 0.6.4 ServerRecords message, `v025` the shapes scouter-ml 0.25 added.
"""
