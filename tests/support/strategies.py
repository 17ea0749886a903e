"""Hypothesis strategies shared by the property tests and the API fuzz."""

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
