"""The scheduler: filters and scores, then a binding (see `scheduler.py`).

    sched = Scheduler(client, clock)      # name="default-scheduler"
    await sched.start()                   # informers synced, scheduling loop running
    ...
    await sched.stop()
"""

from .scheduler import DEFAULT_SCHEDULER, Scheduler

__all__ = ["DEFAULT_SCHEDULER", "Scheduler"]
