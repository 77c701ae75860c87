"""List-scheduling model of the Hopper attention backward's grid (thirty-fifth session, call1).

Blocks take the 132 SMs in grid order, each the moment one frees, and run for as many time units
as they have iterations (G query heads x the query tiles that see the key block, plus a few for
the K / V load and the dK / dV store). Prints each order's makespan against the even share of the
work (total / SMs): how much of a wave's time the tail adds.
    python3 grid_model.py
"""
import heapq


def grid(B, S, chunk, KH=8, G=4, BN=128, BM=64, overhead=6):
    """(group, key block, length) in the kernel's grid order for kBwdChunk = chunk (0: by key
    block over every group, the order before the thirty-fourth session)."""
    nkb, per = S // BN, KH * B
    if chunk == 0:
        order = [(g, kb) for kb in range(nkb) for g in range(per)]
    else:
        C, order = max(1, chunk // nkb), []
        for x in range(per * nkb):
            ch = x // (C * nkb)
            r = x - ch * C * nkb
            cg = min(C, per - ch * C)
            order.append((ch * C + r % cg, r // cg))
    return [(g, kb, G * ((S - kb * BN + BM - 1) // BM) + overhead) for g, kb in order]


def makespan(blocks, sms=132):
    free = [0.0] * sms
    heapq.heapify(free)
    for _, _, length in blocks:
        heapq.heappush(free, heapq.heappop(free) + length)
    return max(free), sum(b[2] for b in blocks) / sms


if __name__ == "__main__":
    print("| shape | order | makespan | even share | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for B, S in ((4, 2048), (1, 8192)):
        for name, chunk in (("by key block", 0), ("c64", 64), ("c128 (main)", 128), ("c256", 256)):
            m, even = makespan(grid(B, S, chunk))
            print(f"| {B} x {S} | {name} | {m:.0f} | {even:.0f} | {m / even:.3f} |")
