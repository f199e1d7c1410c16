#!/usr/bin/env python3
"""Measurement-noise ceiling for the cost model's pairwise comparison accuracy on tuning records
(`python3 scripts/cost_noise.py [DIR]`, default tuner/data; see tuner/data/README.md).

Definitions (mirroring tuner/src/cost/metrics.rs::pairwise_accuracy):
  group   = records with status ok and median_ns > 0, same workload.hash AND same target JSON.
  pair    = unordered pair (i, j) within a group with median_ns[i] != median_ns[j] (full medians).
  agreement(score_a, score_b) over a set of pairs = pooled over all groups (not averaged per group):
      1   if sign(a_i - a_j) == sign(b_i - b_j) (both nonzero), 0.5 if a_i == a_j (a tie), else 0.
      The "reference" b is either another noisy estimate or the full median (never tied on counted pairs).
  half split: each record's 7 samples are randomly permuted and cut into halves of 3 and 4
      (which half gets 4 is random per record); A/B = median of each half. Splits are independent
      per record. Repeated NSPLIT times (seeded); the mean over repeats is reported.
  aligned split: same, but one index permutation shared by all records of a group (keeps any
      round-by-round drift of the interleaved protocol common to both candidates).
  bootstrap: each record's 7 samples resampled with replacement (7 draws), median; two
      independent resamples = boot-vs-boot; one vs full medians = boot-vs-full (bootstrap estimate of
      P(measured order == true order), i.e. the score a noise-free perfect model would get).
  significant at X%: max(median)/min(median) - 1 > X/100, full medians.
  knob pairs: configs compared as dicts; a missing key counts as value <absent>; pairs whose configs
      differ in exactly one key are grouped by that key.
  retest: configs measured >= 2 times in a group; measurement #1 / #2 in file order.
"""
import collections
import glob
import json
import math
import os
import sys

import numpy as np

NSPLIT = 20
SEED = 12345
THRESH = [2, 5, 10, 20]
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tuner", "data")


def load(path):
    groups = collections.defaultdict(list)
    n_all = n_ok = 0
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        n_all += 1
        if r.get("status", {}).get("kind") != "ok" or not r.get("median_ns", 0) > 0:
            continue
        n_ok += 1
        key = (r["workload"]["hash"], json.dumps(r["target"], sort_keys=True))
        groups[key].append(r)
    return groups, n_all, n_ok


def agree(a, b, iu):
    """Per-pair agreement values (1/0.5/0) for upper-triangle index iu."""
    da = (a[:, None] - a[None, :])[iu]
    db = (b[:, None] - b[None, :])[iu]
    return np.where(da == 0, 0.5, (np.sign(da) == np.sign(db)).astype(float))


def half_medians(S, rng, aligned):
    n, m = S.shape
    A = np.empty(n)
    B = np.empty(n)
    if aligned:
        perm = np.tile(rng.permutation(m), (n, 1))
        ka = np.full(n, m // 2 + int(rng.integers(2)) if m % 2 else m // 2)
    else:
        perm = np.argsort(rng.random((n, m)), axis=1)
        ka = m // 2 + (rng.integers(0, 2, n) if m % 2 else 0)
        ka = np.broadcast_to(ka, (n,))
    P = np.take_along_axis(S, perm, axis=1)
    for i in range(n):
        A[i] = np.median(P[i, : ka[i]])
        B[i] = np.median(P[i, ka[i]:])
    return A, B


def boot(S, rng):
    n, m = S.shape
    idx = rng.integers(0, m, (n, m))
    return np.median(np.take_along_axis(S, idx, axis=1), axis=1)


def cfgkey(c):
    return json.dumps(c, sort_keys=True)


def analyse(path):
    groups, n_all, n_ok = load(path)
    rng = np.random.default_rng(SEED)
    sizes = sorted(len(v) for v in groups.values())
    ge2 = [s for s in sizes if s >= 2]
    out = {"file": os.path.basename(path), "records": n_all, "ok": n_ok, "groups": len(groups),
           "groups_ge2": len(ge2), "sizes": ge2}
    # per-pair accumulators (concatenated over groups)
    acc = collections.defaultdict(list)
    ratio_all, knob_all, samecfg_all, group_pairs = [], [], [], []
    half_logratio = []
    retest = []
    dup_logratio = []
    sim_lm = []
    gid_all = []
    gi = 0
    for key, rs in groups.items():
        n = len(rs)
        if n < 2:
            continue
        lens = {len(r["samples_ns"]) for r in rs}
        m = min(lens)
        S = np.array([r["samples_ns"][:m] for r in rs], dtype=float)
        med = np.array([r["median_ns"] for r in rs], dtype=float)
        iu0 = np.triu_indices(n, 1)
        dm = (med[:, None] - med[None, :])[iu0]
        keep = dm != 0
        iu = (iu0[0][keep], iu0[1][keep])
        npairs = int(keep.sum())
        group_pairs.append(npairs)
        if npairs == 0:
            continue
        mi, mj = med[iu[0]], med[iu[1]]
        ratio_all.append(np.maximum(mi, mj) / np.minimum(mi, mj) - 1)
        gid_all.append(np.full(npairs, gi)); gi += 1
        lm = np.log(med)
        sim_lm.append((lm, iu))
        # knobs differing
        cfgs = [r["config"] if isinstance(r["config"], dict) else {"<config>": r["config"]} for r in rs]
        ck = [cfgkey(c) for c in cfgs]
        kn, same = [], []
        for i, j in zip(*iu):
            ci, cj = cfgs[i], cfgs[j]
            diff = [k for k in set(ci) | set(cj) if ci.get(k, "<absent>") != cj.get(k, "<absent>")]
            kn.append(diff[0] if len(diff) == 1 else ("<same config>" if not diff else f"<{len(diff)} knobs>"))
            same.append(ck[i] == ck[j])
        knob_all.append(np.array(kn, dtype=object))
        samecfg_all.append(np.array(same))
        # noise estimators
        hh, hf, ah, bb, bf = (np.zeros(npairs) for _ in range(5))
        for _ in range(NSPLIT):
            A, B = half_medians(S, rng, aligned=False)
            hh += agree(A, B, iu)
            hf += agree(A, med, iu)
            if _ == 0:
                half_logratio.append(np.abs(np.log(A / B)))
            A2, B2 = half_medians(S, rng, aligned=True)
            ah += agree(A2, B2, iu)
            b1, b2 = boot(S, rng), boot(S, rng)
            bb += agree(b1, b2, iu)
            bf += agree(b1, med, iu)
        for name, v in (("hh", hh), ("hf", hf), ("ah", ah), ("bb", bb), ("bf", bf)):
            acc[name].append(v / NSPLIT)
        # retest: configs measured >= 2 times in this group
        first, second = {}, {}
        for idx, k in enumerate(ck):
            if k not in first:
                first[k] = idx
            elif k not in second:
                second[k] = idx
        rk = [k for k in second]
        if rk:
            dup_logratio.append(np.abs(np.log(np.array([med[first[k]] / med[second[k]] for k in rk]))))
        if len(rk) >= 2:
            m1 = np.array([med[first[k]] for k in rk])
            m2 = np.array([med[second[k]] for k in rk])
            iur = np.triu_indices(len(rk), 1)
            d1 = (m1[:, None] - m1[None, :])[iur]
            d2 = (m2[:, None] - m2[None, :])[iur]
            ok = (d1 != 0) & (d2 != 0)
            r1 = (np.maximum(m1[:, None], m1[None, :]) / np.minimum(m1[:, None], m1[None, :]))[iur][ok] - 1
            retest.append(np.stack([(np.sign(d1[ok]) == np.sign(d2[ok])).astype(float), r1]))
    cat = lambda L: np.concatenate(L) if L else np.zeros(0)
    for k in list(acc):
        acc[k] = cat(acc[k])
    ratio = cat(ratio_all)
    knob = cat(knob_all)
    same = cat(samecfg_all).astype(bool)
    out.update(pairs=len(ratio), max_group_pairs=max(group_pairs) if group_pairs else 0,
               acc={k: float(v.mean()) for k, v in acc.items()})
    out["samecfg_pairs"] = int(same.sum())
    out["half_logratio_med"] = float(np.median(cat(half_logratio)))
    rt = np.concatenate(retest, axis=1) if retest else np.zeros((2, 0))
    out["retest"] = (rt.shape[1], float(rt[0].mean()) if rt.shape[1] else float("nan"),
                     float(np.median(rt[1])) if rt.shape[1] else float("nan"),
                     int((rt[1] > 0.10).sum()), float(rt[0][rt[1] > 0.10].mean()) if (rt[1] > 0.10).any() else float("nan"))
    dl = cat(dup_logratio)
    out["dup"] = (len(dl), float(np.median(dl)) if len(dl) else float("nan"))
    # session-noise model: log-normal noise per measurement, sigma from duplicates
    # (median |e1-e2| = 0.6745*sqrt(2)*sigma); ceiling = agreement of measured medians
    # with medians perturbed by that noise once (a perfect model vs one noisy measurement).
    if len(dl) >= 10:
        sigma = float(np.median(dl)) / (0.6745 * math.sqrt(2))
        vals = []
        for _ in range(NSPLIT):
            v = [agree(lm + rng.normal(0, sigma, len(lm)), lm, iu) for lm, iu in sim_lm]
            vals.append(cat(v).mean())
        out["sim"] = (sigma, float(np.mean(vals)))
    else:
        out["sim"] = (float("nan"), float("nan"))
    gid = cat(gid_all)
    big = np.bincount(gid).argmax()
    out["excl_big"] = (float(acc["hh"][gid != big].mean()), float(acc["bf"][gid != big].mean()))
    out["big"] = (float(acc["hh"][gid == big].mean()), float(acc["bf"][gid == big].mean()))
    out["per_group_mean_bf"] = float(np.mean([acc["bf"][gid == g].mean() for g in np.unique(gid)]))
    # Exclude the group with most pairs, to see how much one workload dominates
    sig = {}
    for X in THRESH:
        s = ratio > X / 100
        sig[X] = (float(s.mean()), float(acc["hh"][s].mean()) if s.any() else float("nan"),
                  float(acc["bf"][s].mean()) if s.any() else float("nan"))
    out["sig"] = sig
    kc = collections.Counter(knob)
    out["knobs"] = {k: (c, float(acc["hh"][knob == k].mean()), float(acc["bf"][knob == k].mean()),
                        float(np.median(ratio[knob == k])))
                    for k, c in kc.items()}
    return out


def main():
    files = sorted(glob.glob(os.path.join(DATA, "*.jsonl")))
    res = [analyse(f) for f in files]
    short = [r["file"].replace(".jsonl", "") for r in res]
    print(f"NSPLIT={NSPLIT} SEED={SEED}")
    print("\n## 1. groups and pairs")
    print("file | ok/records | groups | groups>=2 | pairs | max pairs in 1 group | same-config pairs | cands/group min p25 med p75 p90 max mean")
    for r in res:
        s = np.array(r["sizes"])
        q = np.percentile(s, [25, 50, 75, 90])
        print(f"{r['file']} | {r['ok']}/{r['records']} | {r['groups']} | {r['groups_ge2']} | {r['pairs']} | "
              f"{r['max_group_pairs']} ({r['max_group_pairs']/max(r['pairs'],1):.0%}) | {r['samecfg_pairs']} | "
              f"{s.min()} {q[0]:.0f} {q[1]:.0f} {q[2]:.0f} {q[3]:.0f} {s.max()} {s.mean():.1f}")
    print("\n## 2. noise ceilings (pooled pairwise agreement)")
    print("file | half-vs-half | half-vs-full | aligned half-vs-half | boot-vs-boot | boot-vs-full | biggest group hh/bf | excl. biggest group hh/bf | per-group mean bf")
    for r in res:
        a = r["acc"]
        print(f"{r['file']} | {a['hh']:.3f} | {a['hf']:.3f} | {a['ah']:.3f} | {a['bb']:.3f} | {a['bf']:.3f} | "
              f"{r['big'][0]:.3f}/{r['big'][1]:.3f} | {r['excl_big'][0]:.3f}/{r['excl_big'][1]:.3f} | {r['per_group_mean_bf']:.3f}")
    print("file | med |log(A/B)| halves | dup configs, med |log(m1/m2)| | sigma_session, sim ceiling | retest pairs, agree, med diff, n>10%, agree>10%")
    for r in res:
        rt = r["retest"]
        print(f"{r['file']} | {r['half_logratio_med']:.3f} | {r['dup'][0]}, {r['dup'][1]:.3f} | {r['sim'][0]:.3f}, {r['sim'][1]:.3f} | "
              f"{rt[0]}, {rt[1]:.3f}, {rt[2]:.1%}, {rt[3]}, {rt[4]:.3f}")
    print("\n## 3. significant pairs: share of pairs kept / half-vs-half / boot-vs-full")
    print("file | " + " | ".join(f">{X}%" for X in THRESH))
    for r in res:
        print(r["file"] + " | " + " | ".join(f"{r['sig'][X][0]:.2f} / {r['sig'][X][1]:.3f} / {r['sig'][X][2]:.3f}" for X in THRESH))
    print("\n## 4. pairs by differing knob (top 15 per file): count / half-vs-half / boot-vs-full / median ratio-1")
    for r in res:
        print(f"-- {r['file']}")
        one = {k: v for k, v in r["knobs"].items() if not k.startswith("<")}
        print(f"  exactly-one-knob pairs: {sum(v[0] for v in one.values())} of {r['pairs']}; "
              + ", ".join(f"{k} {v[0]}" for k, v in r["knobs"].items() if k.startswith("<")))
        for k, (c, hh, bf, mr) in sorted(one.items(), key=lambda kv: -kv[1][0])[:15]:
            print(f"  {k:24s} {c:7d} {c/r['pairs']:6.1%}  hh {hh:.3f}  bf {bf:.3f}  med diff {mr:.1%}")


if __name__ == "__main__":
    main()
