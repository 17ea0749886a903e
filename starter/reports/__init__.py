"""The portfolio report over the records store (rules §8, docs/rules.md): `rows` reads
what it needs (the database aggregates milestones and escalations), `figures` and
`sections` compute, `portfolio` assembles the `PortfolioReport` (`model`), `flat` makes
its CSV. Reads only the store. The CLI's tables are `starter.cli.portfolio_render`."""
