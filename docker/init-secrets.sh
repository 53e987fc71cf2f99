#!/bin/sh
# One-shot `init` service of docker-compose.yml: make the demo's secrets once, in the
# shared `secrets` volume. Nothing secret is ever committed to the repository.
set -eu
cd /secrets
if [ ! -s demo_ed25519 ]; then
  ssh-keygen -q -t ed25519 -N '' -C stacksense-demo -f demo_ed25519
fi
if [ ! -s router-token ]; then
  # Bearer token that Prometheus and the rule engine present to the router.
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > router-token
fi
# Prometheus runs as another uid (nobody) and must read the token; the private key
# stays readable by the StackSense uid only.
chmod 600 demo_ed25519
chmod 644 demo_ed25519.pub router-token
echo "secrets ready"
