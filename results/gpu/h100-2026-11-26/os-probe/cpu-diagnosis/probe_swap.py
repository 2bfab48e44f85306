"""probe.py with the model's objective swapped: usage probe_swap.py OBJECTIVE <probe.py args...>
(monkeypatches kglnet.train.create_model to set model.objective; nothing in /work/main changes)."""
import sys
sys.path.insert(0, '/work/main/src')
import kglnet.train as T
objective = sys.argv.pop(1)
_orig = T.create_model
def create_model(name):
    m = _orig(name)
    m.objective = objective
    return m
T.create_model = create_model
exec(open('/tmp/os_diag/probe.py').read())
