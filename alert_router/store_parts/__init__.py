"""The router store's aggregates, one module each (alert_router.store composes them).

Each module holds one aggregate's table definitions, statements and a mixin class of its
methods, written against `base.StoreBase` (`conn()`, `tx()`, `dialect`): `alerts`,
`groups`, `nflog` (the notification log), `outbox`, `silences`, `incidents` (incidents
and the history audit trail), `set_aside`, `traces`, `config` (published config and
generations) and `leases`. `alert_router.store.Store` (SQLite) and
`alert_router.store_pg.PgStore` (PostgreSQL) add the connection handling.
"""
