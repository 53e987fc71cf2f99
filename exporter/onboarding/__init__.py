"""One-command onboarding: deploy the monitoring key with a one-time password login.

Modules: `onboard` (the steps, from the inventory to the recorded server) and
`keys` (client key generation, public key lines, known_hosts pinning). Nothing is
imported here: the `stacksense` command imports them only for `onboard` and
`servers`, so an agent-only host never needs paramiko.
"""
