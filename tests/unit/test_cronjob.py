"""CronJob controller in process on a FakeClock: ticks, Job names and the scheduled-timestamp
annotation, concurrency policies Allow/Forbid/Replace, suspend, history limits, missed schedules
after the controller was down (including the too-many-missed warning), startingDeadlineSeconds,
time zones and the @ macros. No Job controller runs, so the test decides when a Job finishes."""

from __future__ import annotations

from datetime import UTC, datetime

from pocketkube.clock import FakeClock
from pocketkube.controllers.base import ControllerManager
from pocketkube.controllers.cronjob import (
    CronJobController,
    Schedule,
    ScheduleError,
    job_from_template,
)
from tests.unit.harness import ControllerEnv, run

CRONJOBS = "cronjobs.batch"
JOBS = "jobs.batch"
START = 1_700_000_000.0          # 2023-11-14T22:13:20Z, the FakeClock's default
FIRST_TICK = 1_700_000_040.0     # 22:14:00


def cronjob(name="cj", schedule="* * * * *", **spec):
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                               "containers": [{"name": "c", "image": "busybox"}]}}}}}}


class Env(ControllerEnv):
    def __init__(self, tmp_path, controllers=(CronJobController,)):
        super().__init__(tmp_path, list(controllers), clock=FakeClock(START))

    async def jobs(self):
        items = (await self.c.list(JOBS, "default"))["items"]
        return sorted(items, key=lambda j: j["metadata"]["name"])

    async def job_names(self):
        return [j["metadata"]["name"] for j in await self.jobs()]

    async def cj(self, name="cj"):
        return await self.c.get(CRONJOBS, "default", name)

    async def events(self, reason):
        items = (await self.c.list("events", "default"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def tick(self, seconds):
        """Move the clock and give the controller's timer a chance to fire."""
        self.clock.advance(seconds)
        await settle()

    async def names_become(self, *names, timeout=5.0):
        want = list(names)

        async def ok():
            return await self.job_names() == want
        await self.until(ok, timeout, f"jobs {want} (have {await self.job_names()})")

    async def finish(self, name, ctype="Complete", started=None):
        job = await self.c.get(JOBS, "default", name)
        now = self.clock.rfc3339()
        job["status"] = {"startTime": started or now, "conditions": [
            {"type": "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget", "status": "True",
             "lastTransitionTime": now, "lastProbeTime": now}, {"type": ctype, "status": "True",
                                                                "lastTransitionTime": now, "lastProbeTime": now}]}
        if ctype == "Complete":
            job["status"].update(succeeded=1, completionTime=now)
        else:
            job["status"]["failed"] = 1
        await self.c.update_status(JOBS, "default", job)


async def settle():
    import asyncio
    for _ in range(20):
        await asyncio.sleep(0.01)


def minutes(t):
    return int(t) // 60


def test_allow_creates_a_job_per_tick_and_requeues_itself(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob())
            await settle()
            assert await env.jobs() == []
            await env.tick(39)
            assert await env.jobs() == []
            await env.tick(1.2)   # 22:14:00 (plus the controller's 100 ms margin)
            name = f"cj-{minutes(FIRST_TICK)}"
            await env.names_become(name)
            (job,) = await env.jobs()
            cj = await env.cj()
            assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
                "2023-11-14T22:14:00Z"
            assert job["metadata"]["labels"] == {"app": "cj"}
            (ref,) = job["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
                ("CronJob", "cj", cj["metadata"]["uid"], True)
            assert cj["status"]["lastScheduleTime"] == "2023-11-14T22:14:00Z"
            (active,) = cj["status"]["active"]
            assert (active["kind"], active["name"], active["uid"]) == ("Job", name, job["metadata"]["uid"])
            # Nothing else happens: the controller's own timer brings the next tick.
            await env.tick(60)
            await env.names_become(name, f"cj-{minutes(FIRST_TICK) + 1}")
            assert len((await env.cj())["status"]["active"]) == 2   # Allow: both run
            await env.until(lambda: env.events("SuccessfulCreate"), 5, "events")
            msgs = sorted(e["message"] for e in await env.events("SuccessfulCreate"))
            assert msgs[0] == f"Created job {name}"
    run(main())


def test_forbid_skips_while_a_job_is_active(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(concurrencyPolicy="Forbid"))
            await env.tick(41)
            first = f"cj-{minutes(FIRST_TICK)}"
            await env.names_become(first)
            await env.tick(60)
            ev = await env.until(lambda: env.events("JobAlreadyActive"), 5, "JobAlreadyActive")
            assert ev[0]["message"] == \
                "Not starting job because prior execution is running and concurrency policy is Forbid"
            assert await env.job_names() == [first]
            await env.finish(first)
            await env.until(lambda: env.events("SawCompletedJob"), 5, "SawCompletedJob")
            (saw,) = await env.events("SawCompletedJob")
            assert saw["message"] == f"Saw completed job: {first}, status: Complete"
            # The skipped tick was never scheduled (lastScheduleTime stayed): it starts now, late.
            await env.names_become(first, f"cj-{minutes(FIRST_TICK) + 1}")
    run(main())


def test_replace_deletes_the_running_job(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(concurrencyPolicy="Replace"))
            await env.tick(41)
            first = f"cj-{minutes(FIRST_TICK)}"
            await env.names_become(first)
            await env.tick(60)
            second = f"cj-{minutes(FIRST_TICK) + 1}"
            await env.names_become(second)
            (active,) = (await env.cj())["status"]["active"]
            assert active["name"] == second
            (ev,) = await env.until(lambda: env.events("SuccessfulDelete"), 5, "SuccessfulDelete")
            assert ev["message"] == f"Deleted job {first}"
    run(main())


def test_history_limits_keep_the_newest_finished_jobs(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
            await env.tick(41)
            made = []
            for i in range(5):
                name = f"cj-{minutes(FIRST_TICK) + i}"
                await env.until(lambda name=name: _has(env, name), 5, name)
                made.append(name)
                await env.finish(name, "Failed" if i in (1, 3) else "Complete")
                await env.tick(60)
            # Complete: 0, 2, 4 -> keep 2, 4. Failed: 1, 3 -> keep 3. And the one just created.
            await env.until(lambda: _lacks(env, made[0], made[1]), 5, "oldest finished jobs deleted")
            names = await env.job_names()
            assert set(made[2:]) <= set(names) and made[0] not in names and made[1] not in names
            cj = await env.cj()
            assert cj["status"]["lastSuccessfulTime"]
            assert not any(a["name"] in made for a in cj["status"].get("active") or ())
    run(main())


async def _has(env, name):
    return name in await env.job_names()


async def _lacks(env, *names):
    have = await env.job_names()
    return not any(n in have for n in names)


def test_suspend_stops_ticks_and_resume_runs_only_the_latest(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(suspend=True))
            await env.tick(41)
            await env.tick(60 * 3)
            assert await env.jobs() == []
            await env.c.patch(CRONJOBS, "default", "cj", {"spec": {"suspend": False}})
            await env.names_become(f"cj-{minutes(FIRST_TICK) + 3}")
    run(main())


async def _downtime(tmp_path, down_seconds, **spec):
    """Create a CronJob with no controller running, let time pass, then start the controller."""
    env = Env(tmp_path, controllers=())
    await env.__aenter__()
    await env.c.create(CRONJOBS, "default", cronjob(**spec))
    env.clock.advance(down_seconds)
    mgr = ControllerManager(env.c, env.clock, [CronJobController])
    await mgr.start()
    env.stoppers.append(mgr)
    return env


def test_missed_schedules_after_downtime_run_only_the_most_recent(tmp_path):
    async def main():
        env = await _downtime(tmp_path, 40 + 10 * 60 + 5)   # ticks 22:14 .. 22:24 missed
        try:
            await env.names_become(f"cj-{minutes(FIRST_TICK) + 10}")
            await settle()
            assert len(await env.jobs()) == 1
            assert await env.events("TooManyMissedTimes") == []
        finally:
            await env.__aexit__(None, None, None)
    run(main())


def test_too_many_missed_schedules_warn_and_still_run_the_latest(tmp_path):
    async def main():
        env = await _downtime(tmp_path, 40 + 150 * 60 + 5)
        try:
            await env.names_become(f"cj-{minutes(FIRST_TICK) + 150}")
            (ev,) = await env.until(lambda: env.events("TooManyMissedTimes"), 5, "TooManyMissedTimes")
            assert ev["type"] == "Warning"
            assert ev["message"] == ("too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                     "or check clock skew")
        finally:
            await env.__aexit__(None, None, None)
    run(main())


def test_starting_deadline_skips_a_tick_missed_by_too_much(tmp_path):
    async def main():
        # Down until 45 s past a tick with a 30 s deadline: that tick is not started.
        env = await _downtime(tmp_path, 40 + 5 * 60 + 45, startingDeadlineSeconds=30)
        try:
            await settle()
            await settle()
            assert await env.jobs() == []
            await env.tick(15.2)
            await env.names_become(f"cj-{minutes(FIRST_TICK) + 6}")
        finally:
            await env.__aexit__(None, None, None)
    run(main())


def test_schedules_macros_and_time_zones():
    t = FIRST_TICK - 1
    assert Schedule("*/15 * * * *").next(t) == 1_700_000_100.0           # 22:15
    assert Schedule("@hourly").next(t) == 1_700_002_800.0               # 23:00
    assert Schedule("@every 90s").next(t) == t + 90
    seoul = Schedule("0 9 * * *", "Asia/Seoul").next(t)                 # 09:00 KST = 00:00 UTC
    assert datetime.fromtimestamp(seoul, UTC).isoformat() == "2023-11-15T00:00:00+00:00"
    assert Schedule("TZ=Asia/Seoul 0 9 * * *").next(t) == seoul
    for bad in ("* * * *", "@sometimes", "61 * * * *", ""):
        try:
            Schedule(bad)
        except ScheduleError:
            continue
        raise AssertionError(f"{bad!r} accepted")
    cj = {"metadata": {"name": "cj", "namespace": "default", "uid": "u"}, "apiVersion": "batch/v1",
          "kind": "CronJob", "spec": {"timeZone": "Asia/Seoul", "jobTemplate": {"spec": {}}}}
    job = job_from_template(cj, seoul)
    assert job["metadata"]["name"] == f"cj-{int(seoul) // 60}"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2023-11-15T09:00:00+09:00"


def test_time_zone_cronjob_fires_at_local_time(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            # 22:13:20 UTC is 07:13:20 in Seoul: "15 7 * * *" there is 22:15 UTC.
            await env.c.create(CRONJOBS, "default", cronjob(schedule="15 7 * * *", timeZone="Asia/Seoul"))
            await env.tick(99)
            assert await env.jobs() == []
            await env.tick(1.2)
            await env.names_become(f"cj-{minutes(FIRST_TICK) + 1}")
    run(main())


def test_missing_active_job_is_dropped(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(concurrencyPolicy="Forbid"))
            await env.tick(41)
            first = f"cj-{minutes(FIRST_TICK)}"
            await env.names_become(first)
            await env.c.delete(JOBS, "default", first, propagation_policy="Background")
            await env.until(lambda: env.events("MissingJob"), 5, "MissingJob")
            assert (await env.events("MissingJob"))[0]["message"] == f"Active job went missing: {first}"

            async def inactive():
                return not (await env.cj())["status"].get("active")
            await env.until(inactive, 5, "active list emptied")
    run(main())


def test_every_seconds_schedule_makes_one_job_per_minute_and_reports_it_once(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(CRONJOBS, "default", cronjob(schedule="@every 10s"))
            await env.tick(10.2)   # 22:13:30
            first = f"cj-{minutes(START)}"
            await env.names_become(first)
            await env.finish(first)
            for _ in range(2):     # 22:13:40, 22:13:50: same minute, same name
                await env.tick(10)
            await env.until(lambda: env.events("SawCompletedJob"), 5, "SawCompletedJob")
            await settle()
            assert len(await env.events("SawCompletedJob")) == 1
            assert await env.job_names() == [first]
            await env.tick(10)     # 22:14:00: a new minute, a new Job
            await env.names_become(first, f"cj-{minutes(START) + 1}")
    run(main())
