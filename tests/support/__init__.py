"""What the tests share, by role: deals and the time-skipping driver, recorded histories,
the fake CRM API, the ingress as the tests drive it, Hypothesis strategies. The pytest
fixtures over them are in `tests/conftest.py`; tests import these as `tests.support.<role>`."""
