import time
def test_peek(stack):
    time.sleep(8)
    print(stack.prometheus.query("benchwatch_probe_faults_total"))
