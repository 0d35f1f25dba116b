#!/usr/bin/env python3
"""Regenerates the test vectors in this folder (needs sympy; run from this folder).

Every list is either computed here from its definition, with the first terms compared against
the published OEIS values, or is a published value that is verified here before it is written.
"""
import random

from sympy import isprime, primerange
from sympy.ntheory.primetest import is_extra_strong_lucas_prp, is_strong_lucas_prp


def spsp(n, a):
    """Whether odd n > 2 is a strong probable prime to base a."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    x = pow(a, d, n)
    if x in (1, n - 1):
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
    return False


def write(name, header, values):
    with open(name, "w") as f:
        for line in header:
            f.write(f"# {line}\n")
        for v in values:
            f.write(f"{v}\n")


LIMIT = 10**6

# Smallest prime factor sieve, for Korselt's criterion.
spf = list(range(LIMIT))
for p in range(2, int(LIMIT**0.5) + 1):
    if spf[p] == p:
        for m in range(p * p, LIMIT, p):
            if spf[m] == m:
                spf[m] = p


def factors(n):
    out = []
    while n > 1:
        out.append(spf[n])
        n //= spf[n]
    return out


carmichael = []
for n in range(3, LIMIT, 2):
    if spf[n] == n:
        continue
    f = factors(n)
    if len(set(f)) == len(f) and len(f) >= 2 and all((n - 1) % (p - 1) == 0 for p in f):
        carmichael.append(n)
assert carmichael[:7] == [561, 1105, 1729, 2465, 2821, 6601, 8911]  # OEIS A002997
assert len(carmichael) == 43  # A055553: 43 Carmichael numbers below 10^6
write("carmichael.txt",
      ["Carmichael numbers below 10^6 (OEIS A002997), by Korselt's criterion."],
      carmichael)

# OEIS A014233: smallest odd number for which Miller-Rabin with the first k prime bases fails.
a014233 = [2047, 1373653, 25326001, 3215031751, 2152302898747, 3474749660383,
           341550071728321, 341550071728321, 3825123056546413051, 3825123056546413051,
           3825123056546413051, 318665857834031151167461, 3317044064679887385961981]
first_primes = list(primerange(2, 42))
for k, n in enumerate(a014233, start=1):
    assert not isprime(n)
    assert all(spsp(n, a) for a in first_primes[:k]), (k, n)
# Minimality, where a brute-force search is cheap.
assert all(not all(spsp(m, a) for a in first_primes[:1]) for m in range(5, 2047, 2) if not isprime(m))
write("a014233.txt",
      ["OEIS A014233: a(k) is the smallest odd composite that is a strong pseudoprime to",
       "each of the first k prime bases, k = 1..13 (Jaeschke 1993; Sorenson and Webster 2015)."],
      a014233)

strong_lucas = [n for n in range(5, LIMIT, 2) if spf[n] != n and is_strong_lucas_prp(n)]
assert strong_lucas[:12] == [5459, 5777, 10877, 16109, 18971, 22499, 24569, 25199, 40309,
                             58519, 75077, 97439]  # OEIS A217255
write("a217255.txt",
      ["OEIS A217255: strong Lucas pseudoprimes (Selfridge's parameters) below 10^6."],
      strong_lucas)

extra_strong = [n for n in range(5, LIMIT, 2) if spf[n] != n and is_extra_strong_lucas_prp(n)]
assert extra_strong[:12] == [989, 3239, 5777, 10877, 27971, 29681, 30739, 31631, 39059,
                             72389, 73919, 75077]  # OEIS A217719
write("a217719.txt",
      ["OEIS A217719: extra strong Lucas pseudoprimes (Baillie's parameters) below 10^6."],
      extra_strong)

spsp2 = [n for n in range(3, LIMIT, 2) if spf[n] != n and spsp(n, 2)]
assert spsp2[:8] == [2047, 3277, 4033, 4681, 8321, 15841, 29341, 42799]  # OEIS A001262
write("a001262.txt",
      ["OEIS A001262: strong pseudoprimes to base 2 below 10^6."],
      spsp2)

# Arnault, "Rabin-Miller primality test: composite numbers which pass it", Math. Comp. 64
# (1995): a 337-digit strong pseudoprime to every prime base below 200.
arnault_200 = int(
    "803837457453639491257079614341942108138837688287558145837488917522297"
    "427376533365218650233616396004545791504202360320876656996676098728404"
    "396540823292873879185086916685732826776177102938969773947016708230428"
    "687109997439976544144845341155872450633409279022275296229414984230688"
    "1685404326457534018329786111298960644845216191652872597534901")
factor_200 = int(
    "400958216639499605418306452084546853005188166041132508774506"
    "204738003217070119624271622319159721973358216316508535816696"
    "9145233813917169287527980445796800452592031836601")
assert len(str(arnault_200)) == 337 and arnault_200 % factor_200 == 0
assert all(spsp(arnault_200, a) for a in primerange(2, 200))
# Arnault, "Constructing Carmichael numbers which are strong pseudoprimes to several bases",
# J. Symbolic Comput. 20 (1995): p1 (313 (p1 - 1) + 1) (353 (p1 - 1) + 1), 397 digits, a
# Carmichael number and a strong pseudoprime to every prime base below 307.
p1 = int("29674495668685510550154174642905332730771991799853043350995075531276838753171770199594"
         "238596428121188033664754218345562493168782883")
arnault_307 = p1 * (313 * (p1 - 1) + 1) * (353 * (p1 - 1) + 1)
assert len(str(arnault_307)) == 397
factors_307 = [p1, 313 * (p1 - 1) + 1, 353 * (p1 - 1) + 1]
assert all(isprime(f) and (arnault_307 - 1) % (f - 1) == 0 for f in factors_307)  # Korselt
assert all(spsp(arnault_307, a) for a in primerange(2, 307))
assert not spsp(arnault_307, 307)
write("arnault.txt",
      ["Arnault's composites: 337 digits, strong pseudoprime to every prime base below 200;",
       "397 digits, Carmichael and strong pseudoprime to every prime base below 307."],
      [arnault_200, arnault_307])

# Base-2 strong pseudoprimes between 2^40 and 2^64 with no prime factor up to 727: they pass
# trial division and the strong test to base 2, so the test after it must reject them. Built as
# p (k (p - 1) + 1) with both factors prime: n - 1 is then a multiple of p - 1, so 2^(n-1) = 1
# modulo p, and about one pair in 200 is a strong pseudoprime to base 2. All of them are in
# Feitsma and Galway's complete list.
rng = random.Random(20261201)
large_spsp2 = set()
while len(large_spsp2) < 10_000:
    p = rng.getrandbits(rng.randint(21, 32)) | (1 << 20) | 1
    if not isprime(p):
        continue
    for k in range(2, 1 << 12):
        q = k * (p - 1) + 1
        n = p * q
        if n >= 1 << 64:
            break
        if n > 1 << 40 and isprime(q) and spsp(n, 2):
            large_spsp2.add(n)
large_spsp2 = sorted(large_spsp2)
assert all(not isprime(n) and spsp(n, 2) for n in large_spsp2)
write("spsp2-large.txt",
      ["Strong pseudoprimes to base 2 between 2^40 and 2^64 of the form p (k (p - 1) + 1),",
       "p and k (p - 1) + 1 prime and above 2^20, from a seeded search."],
      large_spsp2)

# Random primes, from sympy's generator (independent of the crate under test).
rng = random.Random(20261123)
for bits, count in [(256, 8), (1024, 4), (2048, 2)]:
    primes = []
    while len(primes) < count:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        while not isprime(n):
            n += 2
        if n.bit_length() == bits:
            primes.append(n)
    write(f"primes-{bits}.txt", [f"Random {bits}-bit primes, generated with sympy.isprime."],
          primes)
