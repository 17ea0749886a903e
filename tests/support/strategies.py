"""Hypothesis strategies and settings shared by the property tests and the API fuzz."""

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# What `json.loads` can hand the app: huge ints (up to Python's 4,300-digit limit), floats
# including nan and inf (`NaN`, `Infinity`, `1e400`), any text including lone surrogates
# (`"\ud800"`), nested arrays and objects.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**1024, max_value=10**400)
    | st.floats()
    | st.text(max_size=12)
    | st.text(st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=2)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)

# --------------------------------------------------------------------------- Segment calls

timestamps = (
    st.builds(
        lambda at, zone: at.isoformat() + zone,
        st.datetimes(),
        st.sampled_from(["", "Z", "+00:00", "+05:00", "-10:00"]),
    )
    | st.text(max_size=10)
    | json_scalars
)


@st.composite
def segment_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A Segment call, near-valid or not: each field present or not, usual or hostile."""
    field_values: dict[str, st.SearchStrategy[Any]] = {
        "type": st.sampled_from(["track", "identify", "group", "page", "screen", "alias"])
        | json_scalars,
        "messageId": st.sampled_from(["m-1", "m-2", "m-3", " "]) | json_scalars,
        "event": st.sampled_from(["user_logged_in", "user_invited", "setup_completed", "x"])
        | json_values,
        "properties": st.dictionaries(st.sampled_from(["role", "seats"]), json_values)
        | json_values,
        "traits": json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"groupId": json_scalars, "traits": json_values}
        )
        | json_values,
        "groupId": st.sampled_from(["acct-1", "acct-2", "bad id!", "", "x" * 70]) | json_scalars,
        "userId": json_scalars,
        "anonymousId": json_scalars,
        "timestamp": timestamps,
        "sentAt": timestamps,
    }
    present = draw(st.sets(st.sampled_from(sorted(field_values))))
    return {field: draw(field_values[field]) for field in sorted(present)}


def envelopes(calls: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A single call, an array of calls, or a Segment batch with shared context."""
    return (
        calls
        | st.lists(calls, max_size=6)
        | st.builds(lambda batch: {"batch": batch}, st.lists(calls, max_size=6))
        | st.builds(
            lambda batch, ctx, sent: {"batch": batch, "context": ctx, "sentAt": sent},
            st.lists(calls, max_size=6),
            json_values,
            timestamps,
        )
    )


# Hypothesis settings of the property tests. No example database: a failure prints its
# example (with the `hypothesis_shows_examples` fixture), and nothing is written to the repo.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
