"""The StackSense web console: fleet, servers, alerts and incidents, for people.

Kept import-light on purpose: alert_router.config imports console.settings, so this
package must not import the Flask app (which imports the config) at import time.
The console app itself is built by console.mount.
"""
