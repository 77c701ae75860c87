# Sequential emulation of kernels/sample.cu's algorithm (s45-sample-device.patch: radix selections
# of the value key by counts for top-k and by weights for top-p, the ties' index scans, the
# index-order walk) against the core's lora4j_sample, through ctypes:
#   python3 sample_emu.py <build>/liblora4j.so
import ctypes, math, struct, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
lib.lora4j_sample.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_int32, ctypes.c_double, ctypes.c_int32, ctypes.c_double, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int32)]
M64 = (1 << 64) - 1
def s64(x): x &= M64; return x - (1 << 64) if x >> 63 else x
def nxt(st):
    z = (st[0] + 0x9e3779b97f4a7c15) & M64; st[0] = s64(z)
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)
def below(st, bound):
    m = (bound - 1) & M64; r = nxt(st)
    if (bound & m) == 0: return r & m
    u = r >> 1
    while True:
        r = u % bound
        if s64(u + m - r) >= 0: return r
        u = nxt(st) >> 1
def exp_scaled(d):
    kd = (d * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0
    r = (d - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10
    r2 = r * r; r4 = r2 * r2
    p = (1 + r) + r2 * (1.0/2 + r * (1.0/6)) + r4 * ((1.0/24 + r * (1.0/120)) + r2 * (1.0/720 + r * (1.0/5040)) + r4 * (1.0/40320 + r * (1.0/362880)))
    e = 40 + int(kd)
    return p * struct.unpack('<d', struct.pack('<Q', (e + 1023) << 52))[0]
def weight(x, mx, t):
    if mx == math.inf: return 1 if x == math.inf else 0
    if not (x > -math.inf): return 0
    d = (float(x) - float(mx)) / t
    return 0 if d < -27.8 else int(exp_scaled(d))
def vkey(x):
    if x != x: x = -math.inf
    b = struct.unpack('<i', struct.pack('<f', x))[0]
    asc = b ^ ((b >> 31) & 0x7fffffff)
    return ((~asc) & 0xffffffff) ^ 0x80000000
def greedy(xs):
    best = 0
    for i in range(1, len(xs)):
        if xs[i] > xs[best]: best = i
    return best
def boundary(n, k, amount, inn, need):
    pre = 0; mask = 0; before = 0
    for shift in (24, 16, 8, 0):
        hist = [0] * 256
        for i in range(n):
            a = amount(i) if inn(i) else 0
            if (k[i] & mask) == pre and a != 0: hist[(k[i] >> shift) & 255] += a
        b = 0
        while b < 255 and before + hist[b] < need: before += hist[b]; b += 1
        pre |= b << shift; mask |= 255 << shift
    run = before
    for i in range(n):
        if k[i] == pre and inn(i):
            run += amount(i)
            if run >= need: return pre, i, run
    raise AssertionError("no boundary")
def emu(xs, t, topk, p, st):
    n = len(xs)
    vals = [x for x in xs if x == x]
    m = max(vals) if vals else -math.inf
    if m == -math.inf: return greedy(xs)
    w = [weight(x, m, t) for x in xs]; k = [vkey(x) for x in xs]
    kk, ik = 0xffffffff, n - 1
    if 0 < topk < n:
        kk, ik, _ = boundary(n, k, lambda i: 1, lambda i: True, topk)
    kept = lambda i: k[i] < kk or (k[i] == kk and i <= ik)
    z = sum(w[i] for i in range(n) if kept(i)); prefix = 0xffffffff; cut = n - 1; total = z
    if p < 1:
        need = max(1, min(z, int(math.ceil(p * float(z)))))
        prefix, cut, total = boundary(n, k, lambda i: w[i], kept, need)
    u = below(st, total)
    for i in range(n):
        if kept(i) and (k[i] < prefix or (k[i] == prefix and i <= cut)):
            u -= w[i]
            if u < 0: return i
    raise AssertionError
rng = np.random.default_rng(17)
bad = cases = 0
for trial in range(12):
    v = 5 + trial if trial < 3 else 1500
    spread = [1.0, 4.0, 0.2][trial % 3]
    x = (rng.standard_normal(v) * spread).astype(np.float32)
    if trial % 2 == 1 and v > 100:
        x[rng.integers(0, v, 40)] = 3.5; x[rng.integers(0, v, 400)] = 1.25
    if trial % 4 == 3:
        x[rng.integers(0, v)] = np.nan; x[rng.integers(0, v)] = -np.inf; x[rng.integers(0, v)] = -0.0
    if trial == 8: x[rng.integers(0, v, 2)] = np.inf
    if trial == 10: x[:] = 0.5
    if trial == 11: x[:] = -np.inf; x[0] = np.nan
    xs = [float(f) for f in x]
    arr = (ctypes.c_float * v)(*x.tolist())
    for topk, p, t in [(kk, pp, tt) for kk in (0, 1, 3, 50) for pp in (1.0, 0.9, 1e-9, 0.999999)
                       for tt in (0.7, 1e-3, 50.0, math.inf)]:
            st = [trial * 1000 + 7]; cst = ctypes.c_int64(trial * 1000 + 7); tok = ctypes.c_int32()
            for draw in range(2):
                want_rc = lib.lora4j_sample(arr, v, t, topk, p, ctypes.byref(cst), ctypes.byref(tok))
                got = emu(xs, t, topk, p, st)
                cases += 1
                if want_rc != 0 or got != tok.value or st[0] != cst.value:
                    bad += 1
                    if bad < 5: print("MISMATCH trial", trial, "k", topk, "p", p, "t", t, "draw", draw, "core", tok.value, cst.value, "emu", got, st[0])
print("cases", cases, "mismatches", bad)
