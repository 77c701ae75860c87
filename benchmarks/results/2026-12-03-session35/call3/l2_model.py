"""L2 model of the Hopper attention backward's grid (thirty-fifth session, call3).

Blocks take the 132 SMs in grid order (kBwdChunk = 128 unless named), the moment one frees; each
iteration lasts one time unit +- JITTER (uniform) and reads one (head, query tile) of Q / dO
(32 KB) and reduce-adds into the same (head, tile) of the fp32 dQ accumulator (32 KB); a block
first loads its K / V (64 KB) and last writes dK / dV (64 KB). The L2 is one LRU of CAP MB. Prints
each walk's DRAM bytes (misses, plus dirty lines written back) and makespan.
    python3 l2_model.py CAP JITTER      # e.g. 45 0.2
Walks: main (head after head, tiles down), turn (heads in turn at each tile, tiles down), skew
(turn from head (key block mod G)), alt (skew, tiles down in even chunks, up in odd ones), altm
(head after head, tiles down in even chunks, up in odd ones).
"""
import heapq
import random
import sys
from collections import OrderedDict

KB = 1024


def grid(B, S, chunk, KH=8, BN=128):
    """(group, key block, chunk) in the kernel's grid order."""
    nkb, per = S // BN, KH * B
    C, out = max(1, chunk // nkb), []
    for x in range(per * nkb):
        ch = x // (C * nkb)
        r = x - ch * C * nkb
        cg = min(C, per - ch * C)
        out.append((ch * C + r % cg, r // cg, ch))
    return out


def walk(kind, it, nqt, G, kb, ch):
    """Iteration it's (head, tile index from the block's first tile)."""
    if kind == "main":
        return it // nqt, nqt - 1 - it % nqt
    if kind == "turn":
        return it % G, nqt - 1 - it // G
    if kind == "skew":
        return (it + kb) % G, nqt - 1 - it // G
    if kind == "alt":
        t = it // G
        return (it + kb) % G, (nqt - 1 - t) if ch % 2 == 0 else t
    if kind == "altm":
        t = it % nqt
        return it // nqt, (nqt - 1 - t) if ch % 2 == 0 else t
    raise ValueError(kind)


def run(kind, B, S, chunk=128, KH=8, G=4, BN=128, BM=64, sms=132, cap_mb=50, overhead=4,
        jitter=0.0, seed=1):
    rnd = random.Random(seed)
    cap = cap_mb * 1024 * 1024
    lru, used, moved = OrderedDict(), 0, 0

    def touch(key, size, dirty):
        nonlocal used, moved
        if key in lru:
            was, _ = lru.pop(key)
            lru[key] = (was or dirty, size)
            return
        moved += size
        lru[key] = (dirty, size)
        used += size
        while used > cap:
            _, (d, n) = lru.popitem(last=False)
            used -= n
            if d:
                moved += n

    blocks, nxt, events = grid(B, S, chunk, KH, BN), 0, []

    def start(t, sm):
        nonlocal nxt
        if nxt < len(blocks):
            g, kb, ch = blocks[nxt]
            nxt += 1
            touch(("kv", g, kb), 64 * KB, False)
            heapq.heappush(events, (t + overhead, sm, g, kb, ch, (S - kb * BN + BM - 1) // BM, 0))

    for sm in range(sms):
        start(0.0, sm)
    end = 0.0
    while events:
        t, sm, g, kb, ch, nqt, it = heapq.heappop(events)
        end = t
        if it >= G * nqt:
            moved += 64 * KB
            start(t, sm)
            continue
        h, ti = walk(kind, it, nqt, G, kb, ch)
        touch(("q", g, h, kb * 2 + ti), 32 * KB, False)
        touch(("dq", g, h, kb * 2 + ti), 32 * KB, True)
        heapq.heappush(events, (t + 1.0 + rnd.uniform(-jitter, jitter), sm, g, kb, ch, nqt, it + 1))
    moved += sum(n for d, n in lru.values() if d)
    return end, moved / 1e6


if __name__ == "__main__":
    cap, jitter = float(sys.argv[1]), float(sys.argv[2])
    for B, S in ((4, 2048), (1, 8192)):
        cells = []
        for kind, chunk in (("main", 128), ("main", 64), ("turn", 128), ("skew", 128), ("alt", 128),
                            ("altm", 128)):
            end, mb = run(kind, B, S, chunk=chunk, cap_mb=cap, jitter=jitter)
            cells.append(f"{kind}/c{chunk} {mb:.0f} MB {end:.0f}")
        print(f"{B} x {S}: " + " | ".join(cells))
