from tests.console.conftest import login


def test_smoke(app, peers):
    peers.set("web-1", "online")
    c = app.test_client()
    assert c.get("/console/").status_code == 302
    login(c, "otto")
    for path in ("/console/", "/console/servers/web-1", "/console/alerts", "/console/incidents",
                 "/console/silences", "/console/silences/new", "/console/history"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
