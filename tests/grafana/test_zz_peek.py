import json, time
from benchwatch import services
def test_peek(stack):
    time.sleep(12)
    alerts = services._http_json(f"{stack.prometheus.url}/api/v1/alerts")["data"]["alerts"]
    for a in alerts:
        print(a["labels"]["alertname"], a["state"], json.dumps(a["annotations"])[:400])
