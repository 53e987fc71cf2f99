"""The web page template (rendered with autoescape on: every label value is escaped)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StackSense alert router</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.suppressed{color:#888}.label{display:inline-block;background:#eef;
border-radius:3px;padding:0 .3em;margin:.1em;font-size:.9em}
</style></head><body>
<h1>StackSense alert router</h1>
<h2>Alerts ({{ firing_count }})</h2>
{% if more_alerts %}<p class="more" id="more-alerts">Showing the oldest {{ page_rows }} of
{{ firing_count }} alerts; more: <a href="api/v2/alerts">/api/v2/alerts</a>
(paged with limit and offset).</p>{% endif %}
<table id="alerts"><tr><th>Alert</th><th>Server</th><th>Labels</th><th>Summary</th>
<th>Since</th><th>State</th></tr>
{% for a in alerts %}<tr class="{{ a.status.state }}">
<td>{{ a.labels.alertname }}</td><td>{{ a.labels.server }}</td>
<td>{% for k, v in a.labels|dictsort %}<span class="label">{{ k }}={{ v }}</span>{% endfor %}</td>
<td>{{ a.annotations.summary }}</td><td>{{ a.startsAt[:19] }}</td><td>{{ a.status.state }}</td>
</tr>{% else %}<tr><td colspan="6">No alerts.</td></tr>{% endfor %}
</table>
<h2>Incidents</h2>
<table id="incidents"><tr><th>#</th><th>Title</th><th>Server</th><th>Severity</th><th>State</th>
<th>Opened</th><th>By / why</th></tr>
{% for i in incidents %}<tr><td>{{ i.id }}</td><td>{{ i.title }}</td><td>{{ i.server }}</td>
<td>{{ i.severity }}</td><td>{{ i.state }}</td><td>{{ fmt(i.opened_at) }}</td>
<td>{{ i.closed_by or i.acknowledged_by or "" }} {{ i.reason or "" }}</td></tr>
{% else %}<tr><td colspan="7">No incidents.</td></tr>{% endfor %}
</table>
<h2>Silences</h2>
<table id="silences"><tr><th>Matchers</th><th>State</th><th>Ends</th><th>Created by</th>
<th>Comment</th></tr>
{% for s in silences %}<tr><td>{% for m in s.matchers %}<span class="label">{{ m.name }}
{{ "!" if not m.isEqual }}{{ "=~" if m.isRegex else "=" }}{{ m.value }}</span>{% endfor %}</td>
<td>{{ s.status.state }}</td><td>{{ s.endsAt[:19] }}</td><td>{{ s.createdBy }}</td>
<td>{{ s.comment }}</td></tr>
{% else %}<tr><td colspan="5">No silences.</td></tr>{% endfor %}
</table>
{% if more_silences > 0 %}<p class="more" id="more-silences">{{ more_silences }} more
silences: <a href="api/v2/silences">/api/v2/silences</a>.</p>{% endif %}
</body></html>
"""
