"""The portfolio report over the records store (rules §8, docs/rules.md): `rows` loads
what it needs, `figures` and `sections` compute, `portfolio` assembles the
`PortfolioReport` (`model`), `render` prints it as a table or CSV. Reads only the store."""
