"""A scheduler written with pymesos (a real Mesos client from PyPI, not ours).

Usage: pymesos_scheduler.py MASTER_HOST:PORT TIMEOUT_SECONDS

Launches three command tasks through pymesos's HTTP API driver (JSON), two that exit 0
and one that exits 3, acknowledges their updates (pymesos does it implicitly), then
reconciles and stops. Prints one JSON line per status update and, last, a summary
line `RESULT {...}`. Exits 0 when every task reached the expected terminal state.
"""

import getpass
import json
import sys
import threading
import uuid

from pymesos import MesosSchedulerDriver, Scheduler

EXPECTED = {"ok-1": "TASK_FINISHED", "ok-2": "TASK_FINISHED", "fail-3": "TASK_FAILED"}
COMMANDS = {"ok-1": "echo one", "ok-2": "true", "fail-3": "exit 3"}


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class TestScheduler(Scheduler):
    def __init__(self):
        self.lock = threading.Lock()
        self.pending = list(EXPECTED)
        self.final = {}
        self.seen = []
        self.done = threading.Event()
        self.run_id = uuid.uuid4().hex[:8]

    def registered(self, driver, framework_id, master_info):
        print(json.dumps({"registered": framework_id["value"]}), flush=True)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self.lock:
                cpus = next((r["scalar"]["value"] for r in offer["resources"]
                             if r["name"] == "cpus"), 0)
                mem = next((r["scalar"]["value"] for r in offer["resources"]
                            if r["name"] == "mem"), 0)
                tasks = []
                while self.pending and cpus >= 0.1 and mem >= 32:
                    name = self.pending.pop(0)
                    cpus -= 0.1
                    mem -= 32
                    tasks.append({
                        "task_id": {"value": "%s-%s" % (name, self.run_id)},
                        "agent_id": {"value": offer["agent_id"]["value"]},
                        "name": name,
                        "command": {"value": COMMANDS[name]},
                        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
                    })
            if tasks:
                driver.launchTasks(offer["id"], tasks)
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 60})

    def statusUpdate(self, driver, update):
        name = update["task_id"]["value"].rsplit("-", 1)[0]
        state = update["state"]
        print(json.dumps({"task": name, "state": state,
                          "message": update.get("message", "")}), flush=True)
        with self.lock:
            self.seen.append((name, state))
            if state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST",
                         "TASK_ERROR", "TASK_DROPPED"):
                self.final[name] = {"state": state, "message": update.get("message", "")}
            if len(self.final) == len(EXPECTED):
                self.done.set()


def main():
    master, timeout = sys.argv[1], float(sys.argv[2])
    scheduler = TestScheduler()
    framework = {"user": getpass.getuser(), "name": "pymesos-test", "hostname": "localhost",
                 "failover_timeout": 0}
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=False)
    driver.start()
    finished = scheduler.done.wait(timeout)
    driver.stop()
    driver.join()
    ok = finished and all(scheduler.final.get(k, {}).get("state") == v
                          for k, v in EXPECTED.items())
    running_seen = {n for (n, s) in scheduler.seen if s == "TASK_RUNNING"}
    print("RESULT " + json.dumps({"ok": ok, "final": scheduler.final,
                                  "running_seen": sorted(running_seen)}), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
