#!/bin/sh
# Install the exporter's public key for the `monitor` user, make host keys, run sshd.
set -eu
install -d -m 700 -o monitor -g monitor /home/monitor/.ssh
install -m 600 -o monitor -g monitor /secrets/demo_ed25519.pub /home/monitor/.ssh/authorized_keys
ssh-keygen -A
exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no -o PermitRootLogin=no
