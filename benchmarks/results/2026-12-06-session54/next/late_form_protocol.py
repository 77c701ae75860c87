#!/usr/bin/env python3
"""The synchronisation of the hd128 attention backward's late form (attn_bwd_sm90_kernel kForm 1
in next/late-form-main.patch, form 6 "defer-bulk" in next/defer-bulk-forms.patch), as a model:
the copy warp, the lse / delta warp, the converting warps and the two consumer warpgroups as
agents that wait on and arrive at mbarriers with the kernel's counts and parities, and read and
write the shared-memory tiles. Every read names the version it expects (the tile of which
iteration); an asynchronous read (wgmma, the copy engine's bulk read) is checked when issued and
again when its wait completes, so a write between the two is caught. Random schedules, many
block lengths: a run fails on a deadlock (every agent left waiting) or on a read that finds
another version. This checks the protocol as the patch writes it, not the hardware; no GPU.
Usage: late_form_protocol.py [TRIALS]   (prints one line; exit 1 on the first failure);
       late_form_protocol.py --mutants    (each wait left out alone must be caught, unless
       redundant)."""
import random
import sys

ST = 2  # kBwdStages


class Bar:
    def __init__(self, count):
        self.count, self.arrived, self.phase = count, 0, 0  # phase: completed phases

    def arrive(self, n=1):
        self.arrived += n
        assert self.arrived <= self.count, "too many arrivals in a phase"
        if self.arrived == self.count:
            self.arrived, self.phase = 0, self.phase + 1

    def ready(self, parity):  # try_wait.parity: the phase of that parity has completed
        return (self.phase & 1) != parity


class Fail(Exception):
    pass


SKIP = set()  # --mutants: waits left out one kind at a time ("who:barrier"), each must fail


def run(iters, rng):
    bars = {}
    for s in range(ST):
        bars["qdo", s] = Bar(1)
        bars["ld", s] = Bar(1)
        bars["empty", s] = Bar(8)
        bars["qb", s] = Bar(1)
        bars["ldfree", s] = Bar(8)
        bars["qbst", s] = Bar(1)
    for i in range(2):
        bars["dsfull", i] = Bar(8)
        bars["dsfree", i] = Bar(8)
        bars["dsst", i] = Bar(1)
    mem = {}  # tile -> version

    def check(tile, want, what):
        if mem.get(tile) != want:
            raise Fail(f"iters={iters}: {what} read {tile} expecting {want}, found {mem.get(tile)}")

    def producer():
        for it in range(iters):
            s = it % ST
            yield ("wait", ("empty", s), ((it // ST) & 1) ^ 1)
            mem["Q", s] = ("Q", it)
            mem["dO", s] = ("dO", it)
            yield ("arrive", ("qdo", s), 1)

    def loader():
        for it in range(iters):
            s = it % ST
            yield ("wait", ("ldfree", s), ((it // ST) & 1) ^ 1)
            mem["LD", s] = ("LD", it)
            yield ("arrive", ("ld", s), 1)

    def converters():
        for it in range(iters):
            s = it % ST
            yield ("wait", ("qdo", s), (it // ST) & 1)
            if it >= ST:
                yield ("wait", ("qbst", s), ((it // ST) - 1) & 1)
            check(("Q", s), ("Q", it), "convert")
            mem["Qb", s] = ("Qb", it)
            yield ("step",)
            yield ("arrive", ("qb", s), 1)

    def consumer(w):
        pend = []  # async reads in flight: (tile, version, what)

        def issue(tile, want, what):
            check(tile, want, what)
            pend.append((tile, want, what))

        def complete(whats):
            for p in [p for p in pend if p[2] in whats]:
                check(p[0], p[1], p[2] + " (at its completion)")
                pend.remove(p)

        def stage(j):
            if w == 0:
                yield ("wait", ("empty", j % ST), (j // ST) & 1)
                tile = ("Qb", j % ST)
            else:
                yield ("wait", ("dsfree", j & 1), (j >> 1) & 1)
                tile = ("DS", j & 1)
            halves = [tile] if w == 0 else [tile + (0,), tile + (1,)]
            for h in halves:
                mem[h] = ("stage", w, j)
            yield ("step",)
            for h in halves:
                issue(h, ("stage", w, j), "bulk")

        for it in range(iters):
            s = it % ST
            par = (it // ST) & 1
            yield ("wait", ("qdo", s), par)
            issue(("Q", s), ("Q", it), "S")
            issue(("dO", s), ("dO", it), "dP")
            yield ("wait", ("ld", s), par)
            complete({"S", "dP"})
            check(("LD", s), ("LD", it), "lse")
            yield ("arrive", ("ldfree", s), 4)
            if it >= 2:
                yield ("wait", ("dsfree", it & 1), ((it >> 1) - 1) & 1)
                yield ("wait", ("dsst", it & 1), ((it >> 1) - 1) & 1)
            # each warpgroup writes its half (its 64 keys' rows) of dS^T(it)
            mem["DS", it & 1, w] = ("dS", it)
            yield ("arrive", ("dsfull", it & 1), 4)
            yield ("wait", ("qb", s), par)
            if it >= 1:
                yield ("wait", ("dsfull", (it - 1) & 1), ((it - 1) >> 1) & 1)
                for h in (0, 1):  # dQ reads both warpgroups' rows
                    issue(("DS", (it - 1) & 1, h), ("dS", it - 1), "dQ")
            issue(("dO", s), ("dO", it), "dV")
            issue(("Qb", s), ("Qb", it), "dK")
            yield ("step",)
            complete({"dQ"})
            if it >= 1:
                yield ("arrive", ("dsfree", (it - 1) & 1), 4)
                yield from stage(it - 1)
            yield ("step",)
            complete({"dV", "dK"})
            yield ("arrive", ("empty", s), 4)
            if it >= 1:
                complete({"bulk"})
                yield ("arrive", ("qbst", (it - 1) % ST) if w == 0 else ("dsst", (it - 1) & 1), 1)
        last = iters - 1
        yield ("wait", ("dsfull", last & 1), (last >> 1) & 1)
        for h in (0, 1):
            issue(("DS", last & 1, h), ("dS", last), "dQ")
        yield ("step",)
        complete({"dQ"})
        yield ("arrive", ("dsfree", last & 1), 4)
        yield from stage(last)
        yield ("step",)
        complete({"bulk"})

    def skipping(gen, who):  # the agent with its waits named in SKIP left out
        for op in gen:
            if op[0] == "wait" and f"{who}:{op[1][0]}" in SKIP:
                continue
            yield op

    agents = [skipping(producer(), "producer"), skipping(loader(), "loader"),
              skipping(converters(), "converters"), skipping(consumer(0), "wg0"),
              skipping(consumer(1), "wg1")]
    nxt = [next(a) for a in agents]
    while True:
        live = [i for i, a in enumerate(nxt) if a is not None]
        if not live:
            return
        ready = [i for i in live if nxt[i][0] != "wait" or bars[nxt[i][1]].ready(nxt[i][2])]
        if not ready:
            raise Fail(f"iters={iters}: deadlock; waiting: " +
                       ", ".join(f"agent {i} on {nxt[i][1]} parity {nxt[i][2]}" for i in live))
        i = rng.choice(ready)
        op = nxt[i]
        if op[0] == "arrive":
            bars[op[1]].arrive(op[2])
        try:
            nxt[i] = next(agents[i])
        except StopIteration:
            nxt[i] = None


def trial_all(trials, rng):
    for t in range(trials):
        try:
            run(1 + t % 12, rng)
        except Fail as e:
            return str(e)
    return None


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--mutants":
        # each wait the late form adds or moves, left out alone: the model must catch it
        # wg0's dS^T wait on dsfree is implied by its wait on dsst (warpgroup 1's thread 0
        # waited on dsfree before it staged and arrived): redundant in the kernel too. wg1's wait
        # on dsst looks redundant here only because the model runs a warpgroup as one agent: in
        # the kernel thread 0 alone waits for the copy engine's read (bulk_wait_read0), and the
        # other 127 threads learn of it through that wait, so it is required there.
        redundant = {"wg1:dsst", "wg0:dsfree"}
        bad = 0
        for m in ["converters:qbst", "wg0:dsst", "wg1:dsst", "wg0:dsfree", "wg1:dsfree",
                  "wg0:empty", "wg0:dsfull", "wg1:dsfull", "producer:empty"]:
            SKIP.clear()
            SKIP.add(m)
            err = trial_all(3000, random.Random(7))
            verdict = ("caught: " + err[:80]) if err else "not caught"
            print(f"{m:18s} {verdict}{' (redundant)' if m in redundant else ''}")
            bad += (err is None) != (m in redundant)
        return 1 if bad else 0
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rng = random.Random(54)
    for t in range(trials):
        iters = 1 + t % 12
        try:
            run(iters, rng)
        except Fail as e:
            print("FAIL", e)
            return 1
    print(f"ok: {trials} random schedules, blocks of 1 to 12 iterations, no deadlock, every read "
          "found the version it expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
