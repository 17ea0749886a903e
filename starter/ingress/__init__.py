"""The HTTP ingress's routers, one per area of the API, sharing one `Ingress` state.

    deals.py     /webhooks/hubspot, /webhooks/salesforce(/outbound), /webhooks/deals
    events.py    /events (product events)
    accounts.py  /accounts/{account_id} (status, needs a token)
    reports.py   /reports/portfolio (the portfolio report, JSON or CSV, needs a token)
    dashboard.py /dashboard (the portfolio and account pages, HTML, sign-in; from the
                 records store: dashboard_view.py, dashboard_charts.py, dashboard_cache.py)
    customer.py  /progress/{token} (the customer's progress page, HTML; customer_view.py)
    ops.py       /healthz, /readyz, /metrics and the per-request count
    state.py     what the routes share (settings, Temporal client, playbook, rates...)
    reading.py   the raw body, JSON, signatures and domain models of a request
    errors.py    ApiError, the error body, the 503s, the exception handlers
    metrics.py   the Prometheus counters
    openapi.py   the documented request bodies

`starter.app.create_app` wires them (and `/codec`, `starter.codec`).
"""
