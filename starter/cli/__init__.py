"""`onboarding`: the command line of the onboarding service.

    onboarding up                       # dev server + UI (:8233) + worker + ingress (:8000)
    onboarding serve                    # only the HTTP ingress
    onboarding import deals.csv         # bulk-start onboardings, with a summary
    onboarding send-event ACCOUNT EVENT # try a product event against the ingress
    onboarding start --file deal.json   # start (or find) an account's onboarding
    onboarding status ACCOUNT           # the whole state, readable
    onboarding list --state at_risk     # a report from the search attributes
    onboarding link issue ACCOUNT       # the customer's progress page link (or: revoke)
    onboarding report --format csv      # the portfolio report, from the records store
    onboarding simulate --playbook new.toml --sample 1000   # a playbook change, tried first
    onboarding migrate-playbook --playbook new.toml --query '...' --dry-run  # move running ones
    onboarding demo                     # sample accounts that escalate within a minute

Every command talks to Temporal as configured by TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE /
TLS / API key (the SDK's env config); default localhost:7233. Errors are one line on
stderr and a non-zero exit code.

One module per command group (`stack`, `onboardings`, `bulk_import`, `events`,
`reports`, `portfolio`, `simulate`, `migrate`, `records`, `links`, `demo`); `console` assembles them
into `app`, the console script.
"""

from starter.cli.console import app

__all__ = ["app"]
